//! Issue D in a real browser: headless Chromium (WebDriver) through a real nginx running
//! `deploy/nginx/slotpool.conf`, in front of a dummy product, with slotpool behind it.
//! Screenshots go to `target/screenshots/`.

mod common;

use common::browser::{screenshot_dir, wait_for, Browser, Driver, Nginx, Product};
use common::{temp_dir, Client, Opts, Scim, Server};
use serde_json::json;
use std::time::Duration;

const PRODUCT: &str = "jira";
const PASSWORD: &str = "secret-pw";

/// slotpool, a dummy product and nginx in front of both.
struct Site {
    _dir: tempfile::TempDir,
    server: Server,
    _product: Product,
    nginx: Nginx,
}

impl Site {
    fn start(settings: serde_json::Value, users: &[&str]) -> Site {
        Site::start_with(settings, users, |_| {})
    }

    /// Like [`Site::start`], with `directory` run before the users are enrolled (to
    /// provision them through SCIM first).
    fn start_with(
        settings: serde_json::Value,
        users: &[&str],
        directory: impl FnOnce(&Server),
    ) -> Site {
        let dir = temp_dir();
        let data = dir.path().join("data");
        let server = Server::start(&Opts::new(&data, dir.path()));
        let product = Product::start(PRODUCT);
        let nginx_dir = dir.path().join("nginx");
        std::fs::create_dir_all(&nginx_dir).expect("nginx dir");
        let creds: Vec<(&str, &str)> = users.iter().map(|u| (*u, PASSWORD)).collect();
        let nginx = Nginx::start(&nginx_dir, server.port, product.port, &creds);
        let c = server.client();
        let mut settings = settings;
        settings["queue_page"] = json!({
            "title": "Jira <Production>",
            "message": "Licences are **scarce** today. <script>document.title='owned'</script>",
            "base_url": format!("http://127.0.0.1:{}/", nginx.port),
        });
        let r = c.put_product(PRODUCT, settings);
        assert!(r.status == 201 || r.status == 200, "{}", r.body);
        directory(&server);
        for u in users {
            c.enrol(PRODUCT, u);
        }
        Site {
            _dir: dir,
            server,
            _product: product,
            nginx,
        }
    }

    fn client(&self) -> Client {
        self.server.client()
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.nginx.port)
    }
}

#[test]
fn a_queued_user_lands_on_the_queue_page_and_is_taken_to_the_product_when_a_slot_frees() {
    let site = Site::start(
        json!({"kind": "jira", "licence_tier": 10, "shared_slots": 1}),
        &["alice", "bob"],
    );
    let c = site.client();
    assert_eq!(c.request(PRODUCT, "alice").state(), "granted");

    let driver = Driver::start(site.nginx.dir.as_path());
    let bob = Browser::new(&driver, Some(("bob", PASSWORD)));
    let wanted = site.url("/browse/ABC-1?view=full&tab=2");
    bob.goto(&wanted);
    // The pool is full: nginx's gate sends bob to the queue page.
    wait_for("the queue page", Duration::from_secs(15), || {
        bob.url().contains("/slotpool/queue/jira").then_some(())
    });
    let position = wait_for("position 1", Duration::from_secs(15), || {
        bob.visible_text("#sp-position").filter(|t| t == "1")
    });
    assert_eq!(position, "1");
    assert_eq!(c.queue(PRODUCT), vec!["bob".to_string()]);
    // What the administrator typed is shown as text; the Markdown is rendered, its script is not.
    assert_eq!(bob.visible_text("h1").as_deref(), Some("Jira <Production>"));
    assert!(bob
        .visible_text(".message strong")
        .is_some_and(|t| t == "scarce"));
    assert_eq!(
        bob.js(
            "return document.querySelectorAll('.message script').length",
            json!([])
        ),
        json!(0)
    );
    wait_for("the countdown", Duration::from_secs(5), || {
        bob.visible_text("#sp-countdown")
            .filter(|t| t.ends_with(" s"))
    });
    bob.screenshot(&screenshot_dir().join("queue-page.png"));
    // The same page in German keeps the place in the queue.
    bob.goto(&format!("{}&lang=de", bob.url()));
    wait_for("the German queue page", Duration::from_secs(15), || {
        bob.visible_text("#sp-position").filter(|t| t == "1").and(
            bob.visible_text("dt")
                .filter(|t| t.eq_ignore_ascii_case("Ihre Position")),
        )
    });
    bob.screenshot(&screenshot_dir().join("queue-page-de.png"));

    // Alice logs out: bob is taken to the page he asked for, without touching anything.
    assert_eq!(c.release(PRODUCT, "alice").status, 204);
    wait_for("the product page", Duration::from_secs(15), || {
        (bob.url() == wanted).then_some(())
    });
    wait_for("the product's content", Duration::from_secs(10), || {
        bob.visible_text("#product")
    });
    assert_eq!(
        bob.visible_text("#path").as_deref(),
        Some("/browse/ABC-1?view=full&tab=2")
    );
    // nginx never passes the user header on to the product.
    assert_eq!(bob.visible_text("#leak").unwrap_or_default(), "");
    assert_eq!(c.holders(PRODUCT), vec!["bob".to_string()]);
}

/// Rule 10 on the queue page: the reason a member waits while others pass is shown, and
/// kept current by the page's script as the directory and the pool change.
#[test]
fn the_queue_page_says_why_a_capped_member_waits_and_keeps_it_current() {
    let mut ids = Vec::new();
    let mut contractors = String::new();
    let site = Site::start_with(
        json!({"kind": "jira", "licence_tier": 10, "shared_slots": 2,
               "reservations": [{"group": "Contractors", "max": 1}]}),
        &["c1", "c2", "o1"],
        |server| {
            let scim = Scim::new(server);
            ids = ["c1", "c2", "o1"].iter().map(|u| scim.user(u)).collect();
            contractors = scim.group("contractors", &[&ids[0], &ids[1]]);
        },
    );
    let c = site.client();
    assert_eq!(c.request(PRODUCT, "c1").state(), "granted");

    let driver = Driver::start(site.nginx.dir.as_path());
    let c2 = Browser::new(&driver, Some(("c2", PASSWORD)));
    let wanted = site.url("/browse/CAP-1");
    c2.goto(&wanted);
    // A slot is free, but c2's group holds its cap: the queue page, and why.
    wait_for("the queue page", Duration::from_secs(15), || {
        c2.url().contains("/slotpool/queue/jira").then_some(())
    });
    let why = wait_for("the reason", Duration::from_secs(15), || {
        c2.visible_text("#sp-waiting-for")
    });
    assert!(why.ends_with("Group: Contractors"), "{why}");
    let intro = c2.visible_text("#sp-intro").unwrap_or_default();
    assert!(
        !intro.contains("All shared licences are in use"),
        "a slot is free: {intro}"
    );
    c2.screenshot(&screenshot_dir().join("queue-page-group-cap.png"));

    // o1 takes the free slot (not capped); then c1 leaves the group in the directory. The
    // pool is full, so c2 waits for its turn like anyone: the page drops the reason.
    assert_eq!(c.request(PRODUCT, "o1").state(), "granted");
    let scim = Scim::new(&site.server);
    scim.remove_member(&contractors, &ids[0]);
    wait_for("the reason to go", Duration::from_secs(15), || {
        c2.visible_text("#sp-waiting-for").is_none().then_some(())
    });
    assert_eq!(c2.visible_text("#sp-position").as_deref(), Some("1"));
    let intro = c2.visible_text("#sp-intro").unwrap_or_default();
    assert!(
        intro.starts_with("All shared licences are in use"),
        "{intro}"
    );

    // o1 leaves: c2 gets the slot and is taken to the product.
    assert_eq!(c.release(PRODUCT, "o1").status, 204);
    wait_for("the product page", Duration::from_secs(15), || {
        (c2.url() == wanted).then_some(())
    });
    assert_eq!(c.holders(PRODUCT).len(), 2);
}

#[test]
fn the_snippet_warns_before_revocation_stay_keeps_the_slot_and_ignoring_it_loses_it() {
    let site = Site::start(
        json!({"kind": "jira", "licence_tier": 10, "shared_slots": 2,
               "inactivity_s": 4, "warning_lead_s": 2, "sweep_interval_s": 1}),
        &["alice"],
    );
    let c = site.client();
    let driver = Driver::start(site.nginx.dir.as_path());
    let alice = Browser::new(&driver, Some(("alice", PASSWORD)));
    alice.goto(&site.url("/wiki/home"));
    // A free slot: the gate grants it on the first page view.
    wait_for("the product page", Duration::from_secs(15), || {
        alice.visible_text("#product")
    });
    assert_eq!(c.holders(PRODUCT), vec!["alice".to_string()]);

    // Nobody touches the page: the warning comes before the revocation.
    let text = wait_for("the warning popup", Duration::from_secs(15), || {
        alice.visible_text("#slotpool-warning")
    });
    assert!(text.contains("You will lose your slot at"), "{text}");
    let holders = c.holders_json(PRODUCT);
    assert!(
        holders[0]["warned_at"].is_string(),
        "the API shows the pending warning: {holders}"
    );
    alice.screenshot(&screenshot_dir().join("warning-popup.png"));

    // "Stay" is activity: the warning is cancelled and the slot kept.
    alice.click("#slotpool-stay");
    wait_for("the popup to close", Duration::from_secs(5), || {
        alice
            .visible_text("#slotpool-warning")
            .is_none()
            .then_some(())
    });
    wait_for(
        "the warning to be cancelled",
        Duration::from_secs(5),
        || {
            let h = c.holders_json(PRODUCT);
            (h[0]["user"] == "alice" && h[0]["warned_at"].is_null()).then_some(())
        },
    );

    // Ignored, the next warning ends in the "slot lost" notice.
    wait_for("the second warning", Duration::from_secs(15), || {
        alice.visible_text("#slotpool-warning")
    });
    let lost = wait_for("the slot lost notice", Duration::from_secs(15), || {
        alice.visible_text("#slotpool-lost")
    });
    assert!(lost.contains("Slot lost"), "{lost}");
    assert!(lost.contains("inactivity"), "{lost}");
    assert!(c.holders(PRODUCT).is_empty());
    let href = alice.js(
        "return document.getElementById('slotpool-reconnect').getAttribute('href')",
        json!([]),
    );
    assert!(
        href.as_str()
            .is_some_and(|h| h.ends_with("/slotpool/queue/jira?return_to=%2Fwiki%2Fhome")),
        "{href}"
    );
    alice.screenshot(&screenshot_dir().join("slot-lost.png"));

    // "Reconnect" goes through the queue page, which gets a free slot at once and
    // returns to the page.
    alice.click("#slotpool-reconnect");
    wait_for("the product page again", Duration::from_secs(15), || {
        (alice.url() == site.url("/wiki/home") && alice.visible_text("#product").is_some())
            .then_some(())
    });
    assert_eq!(c.holders(PRODUCT), vec!["alice".to_string()]);
}

#[test]
fn the_dashboard_shows_the_api_state_and_its_resize_takes_effect() {
    let site = Site::start(
        json!({"kind": "jira", "licence_tier": 10, "shared_slots": 2}),
        &["alice", "bob", "carol", "dave"],
    );
    let c = site.client();
    for u in ["alice", "bob", "carol", "dave"] {
        c.request(PRODUCT, u);
    }
    assert_eq!(
        c.queue(PRODUCT),
        vec!["carol".to_string(), "dave".to_string()]
    );

    let driver = Driver::start(site.nginx.dir.as_path());
    let admin = Browser::new(&driver, None);
    admin.goto(&format!("{}/admin/", site.server.base));
    admin.type_into("#token", &site.server.token);
    admin.click("#sign-in");
    wait_for("the product list", Duration::from_secs(10), || {
        admin.visible_text("#products")
    });
    admin.click("#products a");
    wait_for("the product page", Duration::from_secs(10), || {
        admin.visible_text("#holders")
    });
    let mut shown = admin.texts("#holders td.user");
    shown.sort();
    let mut api = c.holders(PRODUCT);
    api.sort();
    assert_eq!(shown, api);
    assert_eq!(admin.texts("#queue td.user"), c.queue(PRODUCT));
    admin.screenshot(&screenshot_dir().join("dashboard.png"));

    // "Sync now" posts to the admin API with the session; its answer (or problem) is shown.
    admin.click("#sync-now");
    let answer = wait_for("the sync answer", Duration::from_secs(10), || {
        admin
            .visible_text("#sync-result")
            .filter(|t| !t.is_empty() && !t.starts_with("Syncing"))
    });
    let sync = c.admin("POST", "/admin/v1/products/jira/sync", None);
    if sync.status == 404 {
        assert!(answer.contains("404"), "{answer}");
    } else {
        assert!(!answer.is_empty());
    }

    // Live: bob logs out; without a reload the page shows carol holding, dave waiting.
    assert_eq!(c.release(PRODUCT, "bob").status, 204);
    wait_for("the live update", Duration::from_secs(15), || {
        (admin.texts("#queue td.user") == vec!["dave".to_string()]).then_some(())
    });
    assert!(admin
        .texts("#holders td.user")
        .contains(&"carol".to_string()));

    // A resize in the dashboard takes effect: the queue head gets the new slot.
    admin.type_into("#resize-slots", "3");
    admin.click("#resize-submit");
    wait_for("the resize", Duration::from_secs(10), || {
        admin
            .visible_text(".flash.ok")
            .filter(|t| t.contains("resized"))
    });
    assert_eq!(c.product(PRODUCT)["shared_slots"], 3);
    assert!(c.queue(PRODUCT).is_empty());
    assert!(c.holders(PRODUCT).contains(&"dave".to_string()));
    assert!(admin.texts("#queue td.user").is_empty());

    // Charts and the user-peak view, from the journal.
    admin.goto(&format!(
        "{}/admin/products/jira/charts?range=day",
        site.server.base
    ));
    let lines = admin.js(
        "return document.querySelectorAll('svg.chart polyline').length",
        json!([]),
    );
    assert!(lines.as_u64().unwrap_or(0) >= 6, "{lines}");
    admin.screenshot(&screenshot_dir().join("dashboard-charts.png"));
    admin.goto(&format!(
        "{}/admin/products/jira/peaks?share=100",
        site.server.base
    ));
    let peak = admin.visible_text("#peak-answer").unwrap_or_default();
    // Four requests: demand at each was 1, 2, 3 and 4 (holders + queue).
    assert!(
        peak.starts_with("4 shared slots would have served 100 %"),
        "{peak}"
    );
    admin.screenshot(&screenshot_dir().join("dashboard-peaks.png"));
}

/// Issue G's modes on the queue page: the administrator's queue_all message appears on a
/// waiting user's page the moment the mode switches (no reload), and goes when it
/// switches back, the user being taken on to the product as a slot is free; a page
/// loaded during queue_all shows the message at once.
#[test]
fn the_queue_page_follows_the_mode_live_maintenance_message_then_on_to_the_product() {
    let enforce = json!({"kind": "jira", "licence_tier": 10, "shared_slots": 1});
    let site = Site::start(enforce.clone(), &["alice", "bob", "carol"]);
    let c = site.client();
    assert_eq!(c.request(PRODUCT, "alice").state(), "granted");
    let base = site.url("/");
    let with = |mode: &str| {
        let mut s = enforce.clone();
        s["mode"] = json!(mode);
        s["queue_page"] = json!({
            "base_url": base,
            "queue_all_message": "Upgrade to 10.3 until **10:00** <script>document.title='owned'</script>",
        });
        s
    };

    let driver = Driver::start(site.nginx.dir.as_path());
    let bob = Browser::new(&driver, Some(("bob", PASSWORD)));
    let wanted = site.url("/browse/MNT-1");
    bob.goto(&wanted);
    wait_for("bob waiting", Duration::from_secs(15), || {
        bob.visible_text("#sp-position").filter(|t| t == "1")
    });
    wait_for("the live stream", Duration::from_secs(15), || {
        bob.visible_text("#sp-mode")
            .filter(|t| t == "Live updates are on.")
    });
    assert_eq!(
        bob.visible_text("#sp-maintenance"),
        None,
        "no message in enforce"
    );

    // Maintenance: the message appears without a reload, rendered, its script not run.
    c.put_product(PRODUCT, with("queue_all"));
    let shown = wait_for("the maintenance message", Duration::from_secs(15), || {
        bob.visible_text("#sp-maintenance strong")
    });
    assert_eq!(shown, "10:00");
    assert!(bob
        .visible_text("#sp-maintenance")
        .is_some_and(|t| t.contains("Upgrade to 10.3")));
    assert_eq!(
        bob.js(
            "return document.querySelectorAll('#sp-maintenance script').length",
            json!([])
        ),
        json!(0)
    );
    assert_ne!(bob.js("return document.title", json!([])), json!("owned"));
    assert!(bob.url().contains("/slotpool/queue/jira"), "still waiting");
    bob.screenshot(&screenshot_dir().join("queue-page-maintenance.png"));

    // A page loaded during queue_all shows the message at once; alice's release frees a
    // slot that stays free while the mode lasts.
    let carol = Browser::new(&driver, Some(("carol", PASSWORD)));
    carol.goto(&site.url("/browse/MNT-2"));
    wait_for("carol on the queue page", Duration::from_secs(15), || {
        carol.url().contains("/slotpool/queue/jira").then_some(())
    });
    let loaded = wait_for("the message on load", Duration::from_secs(10), || {
        carol.visible_text("#sp-maintenance strong")
    });
    assert_eq!(loaded, "10:00");
    assert_eq!(c.release(PRODUCT, "alice").status, 204);
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        c.holders(PRODUCT).is_empty(),
        "freed slots stay free in queue_all"
    );
    assert!(bob.url().contains("/slotpool/queue/jira"));

    // Back to enforce with the free slot: the message goes and bob, the queue's head,
    // is taken on to the page he asked for; carol keeps waiting, without the message.
    c.put_product(PRODUCT, with("enforce"));
    wait_for("bob at the product", Duration::from_secs(15), || {
        (bob.url() == wanted).then_some(())
    });
    wait_for("the product's content", Duration::from_secs(10), || {
        bob.visible_text("#product")
    });
    assert_eq!(c.holders(PRODUCT), vec!["bob".to_string()]);
    wait_for("the message removed", Duration::from_secs(15), || {
        carol
            .visible_text("#sp-maintenance")
            .is_none()
            .then_some(())
    });
    assert!(carol.url().contains("/slotpool/queue/jira"));
    assert_eq!(carol.visible_text("#sp-position").as_deref(), Some("1"));
}
