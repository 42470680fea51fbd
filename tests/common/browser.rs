//! Browser tests' harness: headless Chromium driven over the W3C WebDriver protocol
//! (`/usr/bin/chromedriver`), a real nginx configured from `deploy/nginx/slotpool.conf`,
//! and a small dummy product. Every process is stopped when its value is dropped.
//!
//! The WebDriver client is the dozen JSON calls these tests use, over the same blocking
//! `ureq` the rest of the harness uses.

use base64::Engine;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::free_port;

/// Where chromedriver and chromium live (Debian's `chromium-driver` and `chromium`).
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
pub const CHROMIUM: &str = "/usr/bin/chromium";
pub const NGINX: &str = "/usr/sbin/nginx";

/// Waits until `f` returns `Some`, or panics with `what` after `timeout`.
pub fn wait_for<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        if Instant::now() > deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn wait_port(port: u16, what: &str) {
    wait_for(what, Duration::from_secs(15), || {
        TcpStream::connect(("127.0.0.1", port)).ok()
    });
}

/// A running chromedriver.
pub struct Driver {
    child: Child,
    pub base: String,
    agent: ureq::Agent,
}

impl Driver {
    /// Starts chromedriver on a free port.
    pub fn start(log_dir: &Path) -> Driver {
        let port = free_port();
        let log = std::fs::File::create(log_dir.join("chromedriver.log")).expect("log file");
        let child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start /usr/bin/chromedriver (Debian package chromium-driver)");
        let base = format!("http://127.0.0.1:{port}");
        let agent = ureq::AgentBuilder::new()
            .timeout(Duration::from_secs(60))
            .build();
        let d = Driver { child, base, agent };
        wait_for("chromedriver", Duration::from_secs(20), || {
            d.agent
                .get(&format!("{}/status", d.base))
                .call()
                .ok()
                .and_then(|r| r.into_json::<Value>().ok())
                .filter(|v| v["value"]["ready"] == true)
        });
        d
    }

    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let req = self
            .agent
            .request(method, &format!("{}{}", self.base, path));
        let res = match body {
            Some(b) => req.send_json(b),
            None => req.call(),
        };
        match res {
            Ok(r) => r.into_json().unwrap_or(Value::Null),
            Err(ureq::Error::Status(code, r)) => {
                let text = r.into_string().unwrap_or_default();
                json!({"error": code, "text": text})
            }
            Err(e) => json!({"error": 0, "text": e.to_string()}),
        }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One headless Chromium session, optionally authenticated to nginx as a user (HTTP
/// basic credentials sent with every request the page makes, set through DevTools).
pub struct Browser<'d> {
    driver: &'d Driver,
    session: String,
    _profile: tempfile::TempDir,
}

impl<'d> Browser<'d> {
    /// A fresh browser with its own profile.
    pub fn new(driver: &'d Driver, basic_auth: Option<(&str, &str)>) -> Browser<'d> {
        let profile = tempfile::Builder::new()
            .prefix("slotpool-chromium-")
            .tempdir()
            .expect("profile dir");
        let args = vec![
            "--headless".to_string(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--disable-quic".into(),
            "--no-first-run".into(),
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--disable-sync".into(),
            "--disable-dev-shm-usage".into(),
            "--window-size=1280,900".into(),
            "--lang=en-US".into(),
            format!("--user-data-dir={}", profile.path().display()),
        ];
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": CHROMIUM, "args": args}
        }}});
        let v = driver.call("POST", "/session", Some(caps));
        let session = v["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no WebDriver session: {v}"))
            .to_string();
        let b = Browser {
            driver,
            session,
            _profile: profile,
        };
        if let Some((user, password)) = basic_auth {
            let token =
                base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
            b.cdp("Network.enable", json!({}));
            b.cdp(
                "Network.setExtraHTTPHeaders",
                json!({"headers": {"Authorization": format!("Basic {token}")}}),
            );
        }
        b
    }

    fn path(&self, rest: &str) -> String {
        format!("/session/{}{rest}", self.session)
    }

    fn ok(&self, method: &str, rest: &str, body: Option<Value>) -> Value {
        let v = self.driver.call(method, &self.path(rest), body);
        if v.get("error").is_some() || v["value"].get("error").is_some() {
            panic!("WebDriver {method} {rest}: {v}");
        }
        v["value"].clone()
    }

    /// A DevTools command.
    pub fn cdp(&self, cmd: &str, params: Value) -> Value {
        self.ok(
            "POST",
            "/goog/cdp/execute",
            Some(json!({"cmd": cmd, "params": params})),
        )
    }

    /// Opens `url`.
    pub fn goto(&self, url: &str) {
        self.ok("POST", "/url", Some(json!({ "url": url })));
    }

    /// The address of the current page.
    pub fn url(&self) -> String {
        self.ok("GET", "/url", None)
            .as_str()
            .unwrap_or("")
            .to_string()
    }

    /// Runs a script in the page and returns its value.
    pub fn js(&self, script: &str, args: Value) -> Value {
        self.ok(
            "POST",
            "/execute/sync",
            Some(json!({"script": script, "args": args})),
        )
    }

    /// The text of the first element matching `css`, if there is one and it is shown.
    pub fn visible_text(&self, css: &str) -> Option<String> {
        let v = self.js(
            "const e = document.querySelector(arguments[0]); if (!e) return null; \
             const r = e.getBoundingClientRect(); const s = getComputedStyle(e); \
             if (s.display === 'none' || s.visibility === 'hidden' || (r.width === 0 && r.height === 0)) return null; \
             return e.innerText;",
            json!([css]),
        );
        v.as_str().map(str::to_string)
    }

    /// The texts of every element matching `css`.
    pub fn texts(&self, css: &str) -> Vec<String> {
        let v = self.js(
            "return Array.from(document.querySelectorAll(arguments[0])).map(e => e.textContent.trim());",
            json!([css]),
        );
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    }

    fn element(&self, css: &str) -> String {
        let v = self.ok(
            "POST",
            "/element",
            Some(json!({"using": "css selector", "value": css})),
        );
        v.as_object()
            .and_then(|o| o.values().next())
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("no element {css}"))
            .to_string()
    }

    /// Clicks the element matching `css` (a real WebDriver click: pointer events, focus).
    pub fn click(&self, css: &str) {
        let id = self.element(css);
        self.ok("POST", &format!("/element/{id}/click"), Some(json!({})));
    }

    /// Replaces the value of the input matching `css` by typing `text`.
    pub fn type_into(&self, css: &str, text: &str) {
        let id = self.element(css);
        self.ok("POST", &format!("/element/{id}/clear"), Some(json!({})));
        self.ok(
            "POST",
            &format!("/element/{id}/value"),
            Some(json!({ "text": text })),
        );
    }

    /// Saves a PNG screenshot of the viewport to `path`.
    pub fn screenshot(&self, path: &Path) {
        let v = self.ok("GET", "/screenshot", None);
        let png = base64::engine::general_purpose::STANDARD
            .decode(v.as_str().unwrap_or(""))
            .expect("screenshot is base64");
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).expect("screenshot dir");
        }
        std::fs::write(path, png).expect("write screenshot");
    }

    /// A cookie of the current page, by name.
    pub fn cookie(&self, name: &str) -> Option<String> {
        let v = self
            .driver
            .call("GET", &self.path(&format!("/cookie/{name}")), None);
        v["value"]["value"].as_str().map(str::to_string)
    }
}

impl Drop for Browser<'_> {
    fn drop(&mut self) {
        let _ = self.driver.call("DELETE", &self.path(""), None);
    }
}

/// Where the tests put screenshots: `target/screenshots/`.
pub fn screenshot_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/screenshots")
}

/// A real nginx running `deploy/nginx/slotpool.conf`, with the ports, the product id and
/// the password file substituted, in the foreground in a temp dir.
pub struct Nginx {
    child: Child,
    pub port: u16,
    pub dir: PathBuf,
}

impl Nginx {
    /// Starts nginx in front of slotpool (`slotpool_port`) and the product
    /// (`product_port`), with basic-auth `users` (name, password).
    pub fn start(
        dir: &Path,
        slotpool_port: u16,
        product_port: u16,
        users: &[(&str, &str)],
    ) -> Nginx {
        let port = free_port();
        let conf_src = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/nginx/slotpool.conf"),
        )
        .expect("deploy/nginx/slotpool.conf");
        let htpasswd = dir.join("htpasswd");
        let lines: String = users
            .iter()
            .map(|(u, p)| format!("{u}:{{PLAIN}}{p}\n"))
            .collect();
        std::fs::write(&htpasswd, lines).expect("htpasswd");
        let replace = |s: String, from: &str, to: &str| {
            assert!(
                s.contains(from),
                "deploy/nginx/slotpool.conf no longer contains {from:?}"
            );
            s.replace(from, to)
        };
        let mut conf = replace(
            conf_src,
            "server 127.0.0.1:8080;",
            &format!("server 127.0.0.1:{slotpool_port};"),
        );
        conf = replace(
            conf,
            "server 127.0.0.1:8081;",
            &format!("server 127.0.0.1:{product_port};"),
        );
        conf = replace(conf, "listen 80;", &format!("listen 127.0.0.1:{port};"));
        conf = replace(
            conf,
            "/etc/nginx/slotpool.htpasswd",
            &htpasswd.display().to_string(),
        );
        std::fs::write(dir.join("slotpool.conf"), conf).expect("write slotpool.conf");
        for t in ["body", "proxy", "fastcgi", "uwsgi", "scgi"] {
            std::fs::create_dir_all(dir.join(t)).expect("temp dir");
        }
        let d = dir.display();
        let main = format!(
            "daemon off;\nmaster_process off;\nworker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/error.log info;\n\
             events {{ worker_connections 256; }}\n\
             http {{\n  access_log {d}/access.log;\n  client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n  \
             fastcgi_temp_path {d}/fastcgi;\n  uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n  \
             include {d}/slotpool.conf;\n}}\n"
        );
        std::fs::write(dir.join("nginx.conf"), main).expect("write nginx.conf");
        let child = Command::new(NGINX)
            .arg("-p")
            .arg(dir)
            .arg("-e")
            .arg(dir.join("error.log"))
            .arg("-c")
            .arg(dir.join("nginx.conf"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start /usr/sbin/nginx (Debian package nginx)");
        wait_port(port, "nginx");
        Nginx {
            child,
            port,
            dir: dir.to_path_buf(),
        }
    }

    /// nginx's error log, for diagnosis.
    pub fn error_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("error.log")).unwrap_or_default()
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("=== nginx error log ===\n{}", self.error_log());
        }
    }
}

/// A dummy product: answers every GET with a page that names the path and includes the
/// slotpool snippet. Counts the requests it served.
pub struct Product {
    pub port: u16,
    stop: Arc<AtomicBool>,
    pub served: Arc<std::sync::atomic::AtomicUsize>,
}

impl Product {
    /// Starts it on a free port, for product id `product`.
    pub fn start(product: &str) -> Product {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let stop = Arc::new(AtomicBool::new(false));
        let served = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let (stop2, served2, product) = (stop.clone(), served.clone(), product.to_string());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stop2.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(mut conn) = conn else { continue };
                let product = product.clone();
                let served = served2.clone();
                std::thread::spawn(move || {
                    let mut reader = BufReader::new(conn.try_clone().expect("clone"));
                    let mut first = String::new();
                    if reader.read_line(&mut first).is_err() {
                        return;
                    }
                    let mut leaked_user = String::new();
                    loop {
                        let mut line = String::new();
                        if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                            break;
                        }
                        if let Some(v) = line.to_ascii_lowercase().strip_prefix("x-slotpool-user:")
                        {
                            leaked_user = v.trim().to_string();
                        }
                    }
                    let path = first.split_whitespace().nth(1).unwrap_or("/").to_string();
                    served.fetch_add(1, Ordering::SeqCst);
                    let body = format!(
                        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Product</title>\
                         <script src=\"/slotpool/static/slotpool.js\" data-product=\"{product}\" data-activity-throttle-s=\"1\" defer></script>\
                         </head><body><h1 id=\"product\">Product page</h1><p id=\"path\">{}</p><p id=\"leak\">{}</p></body></html>",
                        path.replace('&', "&amp;").replace('<', "&lt;"),
                        leaked_user.replace('<', "&lt;")
                    );
                    let _ = write!(
                        conn,
                        "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{}",
                        body.len(),
                        body
                    );
                });
            }
        });
        Product { port, stop, served }
    }
}

impl Drop for Product {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}
