//! The connector's HTTP side: how each kind of product is told to add a user to its
//! access group or remove one, and asked who is in it (awc, actix's client).
//!
//! - Jira Data Center: `POST /rest/api/2/group/user?groupname=G` `{"name": u}`,
//!   `DELETE /rest/api/2/group/user?groupname=G&username=u`,
//!   `GET /rest/api/2/group/member?groupname=G&includeInactiveUsers=true&startAt=N`.
//! - Confluence Data Center: `PUT` / `DELETE /rest/api/user/{u}/group/{g}` (idempotent),
//!   `GET /rest/api/group/{g}/member?start=N&limit=M`.
//! - Bitbucket Data Center: `POST /rest/api/latest/admin/users/add-groups`
//!   `{"user": u, "groups": [g]}`, `POST /rest/api/latest/admin/users/remove-group`
//!   `{"context": u, "itemName": g}`, `GET /rest/api/latest/admin/groups/more-members?context=g`.
//! - Confluence space entitlements (a connector with `spaces`): the catalogue is
//!   `GET /rest/api/space?type=global&start=N&limit=M` (`results[].key`, `.name`); a
//!   permission is granted by `POST /rest/api/space/{key}/permission`
//!   `{"subject": {"type": "user", "identifier": u}, "operation": {"key": k, "target": t}}`
//!   (the answer's `id` is kept) and removed by `DELETE /rest/api/space/{key}/permission/{id}`;
//!   a permission whose id is not known (Confluence said it already existed) is looked up
//!   in `GET /rest/api/space/{key}?expand=permissions` first. "Already exists" and "not
//!   found" answers are successes.
//! - Webhook: `POST base_url` `{"product", "user", "action": "add"|"remove", "group", "id"}`
//!   with an `Idempotency-Key` header; it cannot list the group.
//!
//! "Already a member" and "not a member" answers are successes: deliveries are
//! idempotent. The credentials file is read at each call (so it can be rotated), holding
//! `user:password` (basic authentication) or a token (bearer).

use crate::config::CredentialFiles;
use awc::http::Method;
use awc::Client;
use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};
use serde_json::{json, Value};
use slotpool_actors::{DeliveryError, GroupChange, Transport, TransportFactory};
use slotpool_events::{ConnectorKind, ConnectorSettings, Grant, SpaceOperation};
use std::collections::BTreeSet;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

/// Largest answer body read from a product.
const MAX_ANSWER_BYTES: usize = 4 * 1024 * 1024;
/// Members asked for per page from Confluence.
const CONFLUENCE_PAGE: usize = 200;
/// Spaces asked for per page from Confluence.
const SPACE_PAGE: usize = 100;
/// Most pages of group members read by one re-sync (a runaway guard).
const MAX_PAGES: usize = 10_000;

/// TLS for `https://` products (rustls with the ring provider), trusting the system's
/// certificate store (`/etc/ssl/certs`, or the file named by `SSL_CERT_FILE`), so that a
/// company CA installed on the host is trusted. An unreadable store leaves it empty (every
/// `https://` call then fails with a certificate error, reported like any failure): never
/// a panic.
pub fn tls_config() -> rustls::ClientConfig {
    let mut roots = rustls::RootCertStore::empty();
    let found = rustls_native_certs::load_native_certs();
    for e in &found.errors {
        tracing::warn!(error = %e, "reading the system's certificates");
    }
    let (added, ignored) = roots.add_parsable_certificates(found.certs);
    if added == 0 {
        tracing::warn!(
            ignored,
            "no trusted certificates found: https:// connectors will fail"
        );
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = match rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
    {
        Ok(b) => b.with_root_certificates(roots).with_no_client_auth(),
        // The ring provider supports the default versions; keep a config that works anyway.
        Err(e) => {
            tracing::error!(error = %e, "TLS set-up failed; using the process defaults");
            rustls::ClientConfig::builder()
                .with_root_certificates(rustls::RootCertStore::empty())
                .with_no_client_auth()
        }
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    config
}

/// The factory the binary gives the actors: an HTTP transport per connector, reading
/// credentials only where `credentials` allows.
pub fn transport_factory(credentials: CredentialFiles) -> TransportFactory {
    let credentials = Arc::new(credentials);
    Arc::new(move |product: &str, settings: &ConnectorSettings| {
        Rc::new(HttpTransport::new(
            product,
            settings,
            Arc::clone(&credentials),
        )) as Rc<dyn Transport>
    })
}

/// Talks to one product over HTTP.
#[derive(Clone)]
pub struct HttpTransport {
    client: Client,
    product: String,
    settings: ConnectorSettings,
    credentials: Arc<CredentialFiles>,
}

/// Why a credentials file was not used; the connector's status shows this, never a path
/// or an operating-system error (those go to the service's log).
const CREDENTIALS_REFUSED: &str =
    "the credentials_file name is not one this service may read (a relative name in its connector secrets directory, or one its config file lists)";
const CREDENTIALS_UNREADABLE: &str =
    "the credentials file is missing, unreadable or empty; see the service's log";

impl CredentialFiles {
    /// The file a connector's `credentials_file` name stands for: the config file's own
    /// path for a name it lists, else the name under the secrets directory. `None` for a
    /// name that is not a valid relative name (an absolute path from an old journal, `..`).
    pub fn path_of(&self, name: &str) -> Option<std::path::PathBuf> {
        if let Some(path) = self.named.get(name) {
            return Some(path.clone());
        }
        slotpool_events::connector::valid_credentials_name(name)
            .then(|| self.secrets_dir.join(name))
    }
}

/// How a call authenticates.
enum Credentials {
    None,
    Basic(String, String),
    Bearer(String),
}

fn enc(s: &str) -> String {
    utf8_percent_encode(s, NON_ALPHANUMERIC).to_string()
}

impl HttpTransport {
    /// A transport for `settings` (a client of its own, with the connector's timeout).
    pub fn new(
        product: &str,
        settings: &ConnectorSettings,
        credentials: Arc<CredentialFiles>,
    ) -> Self {
        let client = Client::builder()
            .connector(awc::Connector::new().rustls_0_23(Arc::new(tls_config())))
            .timeout(Duration::from_secs(u64::from(settings.timeout_s)))
            .disable_redirects()
            .finish();
        HttpTransport {
            client,
            product: product.to_string(),
            settings: settings.clone(),
            credentials,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{}", self.settings.base_url.trim_end_matches('/'), path)
    }

    fn credentials(
        product: &str,
        settings: &ConnectorSettings,
        files: &CredentialFiles,
    ) -> Result<Credentials, DeliveryError> {
        let Some(name) = &settings.credentials_file else {
            return Ok(Credentials::None);
        };
        let Some(path) = files.path_of(name) else {
            tracing::warn!(product, name = %name, "connector credentials_file refused: not a name in the secrets directory");
            return Err(DeliveryError::Credentials(CREDENTIALS_REFUSED.into()));
        };
        let text = std::fs::read_to_string(&path).map_err(|e| {
            tracing::warn!(product, file = %path.display(), error = %e, "connector credentials file unreadable");
            DeliveryError::Credentials(CREDENTIALS_UNREADABLE.into())
        })?;
        let text = text.trim();
        if text.is_empty() {
            tracing::warn!(product, file = %path.display(), "connector credentials file empty");
            return Err(DeliveryError::Credentials(CREDENTIALS_UNREADABLE.into()));
        }
        Ok(match text.split_once(':') {
            Some((user, password)) => Credentials::Basic(user.to_string(), password.to_string()),
            None => Credentials::Bearer(text.to_string()),
        })
    }

    /// Sends one request; answers the status and the body (read up to a limit).
    fn send(
        &self,
        method: Method,
        url: String,
        body: Option<Value>,
        idempotency_key: Option<String>,
    ) -> futures_util::future::LocalBoxFuture<'static, Result<(u16, String), DeliveryError>> {
        let settings = self.settings.clone();
        let client = self.client.clone();
        let credentials = Self::credentials(&self.product, &settings, &self.credentials);
        Box::pin(async move {
            let mut req = client
                .request(method, &url)
                .insert_header(("Accept", "application/json"))
                // Atlassian products refuse state-changing REST calls without it.
                .insert_header(("X-Atlassian-Token", "no-check"));
            req = match credentials? {
                Credentials::None => req,
                Credentials::Basic(u, p) => req.basic_auth(u, p),
                Credentials::Bearer(t) => req.bearer_auth(t),
            };
            if let Some(key) = idempotency_key {
                req = req.insert_header(("Idempotency-Key", key));
            }
            let sent = match body {
                Some(b) => req.send_json(&b).await,
                None => req.send().await,
            };
            let mut res = sent.map_err(|e| match e {
                awc::error::SendRequestError::Timeout => DeliveryError::Timeout(settings.timeout_s),
                other => DeliveryError::Network(other.to_string()),
            })?;
            let status = res.status().as_u16();
            let bytes = res
                .body()
                .limit(MAX_ANSWER_BYTES)
                .await
                .map_err(|e| DeliveryError::Network(e.to_string()))?;
            Ok((status, String::from_utf8_lossy(&bytes).into_owned()))
        })
    }
}

/// Whether an answer means the membership is as asked: 2xx, or an error that says the
/// user already is (or already is not) a member.
fn settled(status: u16, body: &str) -> bool {
    if (200..300).contains(&status) {
        return true;
    }
    let b = body.to_ascii_lowercase();
    (status == 400 || status == 404 || status == 409)
        && (b.contains("already a member") || b.contains("not a member"))
}

fn answer_error(status: u16, body: &str) -> DeliveryError {
    let mut body = body.trim().to_string();
    if body.len() > 300 {
        let mut cut = 300;
        while !body.is_char_boundary(cut) {
            cut -= 1;
        }
        body.truncate(cut);
        body.push('…');
    }
    DeliveryError::Status { status, body }
}

fn parse(body: &str) -> Result<Value, DeliveryError> {
    serde_json::from_str(body)
        .map_err(|e| DeliveryError::Network(format!("the product's answer is not JSON: {e}")))
}

impl HttpTransport {
    /// The one call that puts `change` into effect in the product (no I/O).
    fn plan(&self, change: &GroupChange) -> Call {
        let g = &self.settings.access_group;
        let u = &change.user;
        let (method, url, body, key) = match (self.settings.kind, change.add) {
            (ConnectorKind::Jira, true) => (
                Method::POST,
                self.url(&format!("/rest/api/2/group/user?groupname={}", enc(g))),
                Some(json!({ "name": u })),
                None,
            ),
            (ConnectorKind::Jira, false) => (
                Method::DELETE,
                self.url(&format!(
                    "/rest/api/2/group/user?groupname={}&username={}",
                    enc(g),
                    enc(u)
                )),
                None,
                None,
            ),
            (ConnectorKind::Confluence, add) => (
                if add { Method::PUT } else { Method::DELETE },
                self.url(&format!("/rest/api/user/{}/group/{}", enc(u), enc(g))),
                None,
                None,
            ),
            (ConnectorKind::Bitbucket, true) => (
                Method::POST,
                self.url("/rest/api/latest/admin/users/add-groups"),
                Some(json!({ "user": u, "groups": [g] })),
                None,
            ),
            (ConnectorKind::Bitbucket, false) => (
                Method::POST,
                self.url("/rest/api/latest/admin/users/remove-group"),
                Some(json!({ "context": u, "itemName": g })),
                None,
            ),
            (ConnectorKind::Webhook, add) => (
                Method::POST,
                self.settings.base_url.clone(),
                Some(json!({
                    "product": self.product,
                    "user": u,
                    "action": if add { "add" } else { "remove" },
                    "group": g,
                    "id": change.id,
                })),
                Some(change.id.clone()),
            ),
        };
        Call {
            method,
            url,
            body,
            key,
        }
    }
}

/// One HTTP call to a product.
#[derive(Debug, PartialEq)]
struct Call {
    method: Method,
    url: String,
    body: Option<Value>,
    key: Option<String>,
}

/// One page of a group's members: the names on it, and where the next page starts (none
/// on the last page). Jira: `values[].name`, `isLast`; Confluence: `results[].username`, a
/// short page is the last; Bitbucket: `values[].name`, `isLastPage`, `nextPageStart`.
fn members_page(
    kind: ConnectorKind,
    body: &str,
    start: usize,
) -> Result<(Vec<String>, Option<usize>), DeliveryError> {
    let page = parse(body)?;
    let (list, name_key) = match kind {
        ConnectorKind::Confluence => (page.get("results"), "username"),
        _ => (page.get("values"), "name"),
    };
    let list = list
        .and_then(Value::as_array)
        .ok_or_else(|| DeliveryError::Network("the product's member list has no values".into()))?;
    let names = list
        .iter()
        .filter_map(|m| m.get(name_key).and_then(Value::as_str))
        .map(str::to_string)
        .collect();
    let last = match kind {
        ConnectorKind::Jira => page.get("isLast").and_then(Value::as_bool),
        ConnectorKind::Bitbucket => page.get("isLastPage").and_then(Value::as_bool),
        _ => None,
    }
    .unwrap_or(true);
    let more = match kind {
        ConnectorKind::Confluence => list.len() == CONFLUENCE_PAGE,
        _ => !last && !list.is_empty(),
    };
    if !more {
        return Ok((names, None));
    }
    // The product's numbers are not trusted: no overflow on a hostile `nextPageStart`.
    let after = start.saturating_add(list.len());
    let next = match kind {
        ConnectorKind::Bitbucket => page
            .get("nextPageStart")
            .and_then(Value::as_u64)
            .map_or(after, |n| usize::try_from(n).unwrap_or(usize::MAX)),
        _ => after,
    };
    Ok((names, Some(next)))
}

/// The body of a space-permission grant (Confluence's `SpacePermissionRequest`).
fn permission_body(user: &str, operation: &SpaceOperation) -> Value {
    json!({
        "subject": {"type": "user", "identifier": user},
        "operation": {"key": operation.key, "target": operation.target},
    })
}

/// Whether a refused grant says the permission is there already (a success).
fn already_granted(status: u16, body: &str) -> bool {
    (status == 400 || status == 409) && body.to_ascii_lowercase().contains("already")
}

/// One page of spaces: `(key, name)` of each, and whether more may follow (a full page).
fn spaces_page(body: &str) -> Result<(Vec<(String, String)>, bool), DeliveryError> {
    let page = parse(body)?;
    let list = page
        .get("results")
        .and_then(Value::as_array)
        .ok_or_else(|| DeliveryError::Network("the space list has no results".into()))?;
    let spaces = list
        .iter()
        .filter_map(|s| {
            let key = s.get("key").and_then(Value::as_str)?;
            let name = s.get("name").and_then(Value::as_str).unwrap_or(key);
            let printable = |t: &str| {
                !t.is_empty()
                    && t.len() <= slotpool_events::space::MAX_NAME_LEN
                    && !t.chars().any(char::is_control)
            };
            (printable(key) && printable(name)).then(|| (key.to_string(), name.to_string()))
        })
        .collect();
    Ok((spaces, list.len() == SPACE_PAGE))
}

/// The id of `user`'s permission `operation` in a space's `?expand=permissions` answer:
/// `permissions[]` with `id`, `operation.operation` / `operation.targetType` and the
/// users in `subjects.user.results[]` (named by `username`, `accountId` or `userKey`).
fn permission_id_in(body: &str, user: &str, operation: &SpaceOperation) -> Option<u64> {
    let space: Value = serde_json::from_str(body).ok()?;
    space
        .get("permissions")?
        .as_array()?
        .iter()
        .find(|p| {
            let op = &p["operation"];
            op["operation"] == operation.key.as_str()
                && op["targetType"] == operation.target.as_str()
                && p["subjects"]["user"]["results"]
                    .as_array()
                    .is_some_and(|users| {
                        users.iter().any(|u| {
                            ["username", "accountId", "userKey"]
                                .iter()
                                .any(|k| u[*k] == user)
                        })
                    })
        })
        .and_then(|p| p.get("id"))
        .and_then(Value::as_u64)
}

impl Transport for HttpTransport {
    fn spaces(
        &self,
    ) -> futures_util::future::LocalBoxFuture<'static, Result<Vec<(String, String)>, DeliveryError>>
    {
        let this = self.clone();
        Box::pin(async move {
            if this.settings.kind != ConnectorKind::Confluence {
                return Err(DeliveryError::State(
                    "only a Confluence connector lists spaces".into(),
                ));
            }
            let mut spaces = Vec::new();
            let mut start = 0usize;
            for _ in 0..MAX_PAGES {
                let path = format!("/rest/api/space?type=global&start={start}&limit={SPACE_PAGE}");
                let (status, body) = this.send(Method::GET, this.url(&path), None, None).await?;
                if !(200..300).contains(&status) {
                    return Err(answer_error(status, &body));
                }
                let (page, more) = spaces_page(&body)?;
                spaces.extend(page);
                if !more {
                    spaces.sort();
                    spaces.dedup_by(|a, b| a.0 == b.0);
                    return Ok(spaces);
                }
                start = start.saturating_add(SPACE_PAGE);
            }
            Err(DeliveryError::Network("the space list did not end".into()))
        })
    }

    fn grant_space(
        &self,
        user: &str,
        space: &str,
        operation: &SpaceOperation,
    ) -> futures_util::future::LocalBoxFuture<'static, Result<Option<u64>, DeliveryError>> {
        let url = self.url(&format!("/rest/api/space/{}/permission", enc(space)));
        let sent = self.send(
            Method::POST,
            url,
            Some(permission_body(user, operation)),
            None,
        );
        Box::pin(async move {
            let (status, body) = sent.await?;
            if (200..300).contains(&status) {
                return Ok(serde_json::from_str::<Value>(&body)
                    .ok()
                    .and_then(|v| v.get("id").and_then(Value::as_u64)));
            }
            if already_granted(status, &body) {
                return Ok(None);
            }
            Err(answer_error(status, &body))
        })
    }

    fn remove_space(
        &self,
        user: &str,
        space: &str,
        grant: &Grant,
    ) -> futures_util::future::LocalBoxFuture<'static, Result<(), DeliveryError>> {
        let this = self.clone();
        let (user, space, grant) = (user.to_string(), enc(space), grant.clone());
        Box::pin(async move {
            let id = match grant.permission_id {
                Some(id) => id,
                None => {
                    let url = this.url(&format!("/rest/api/space/{space}?expand=permissions"));
                    let (status, body) = this.send(Method::GET, url, None, None).await?;
                    if status == 404 {
                        return Ok(());
                    }
                    if !(200..300).contains(&status) {
                        return Err(answer_error(status, &body));
                    }
                    match permission_id_in(&body, &user, &grant.operation) {
                        Some(id) => id,
                        // Not there: nothing to remove.
                        None => return Ok(()),
                    }
                }
            };
            let url = this.url(&format!("/rest/api/space/{space}/permission/{id}"));
            let (status, body) = this.send(Method::DELETE, url, None, None).await?;
            if (200..300).contains(&status) || status == 404 {
                Ok(())
            } else {
                Err(answer_error(status, &body))
            }
        })
    }

    fn deliver(
        &self,
        change: GroupChange,
    ) -> futures_util::future::LocalBoxFuture<'static, Result<(), DeliveryError>> {
        let Call {
            method,
            url,
            body,
            key,
        } = self.plan(&change);
        let sent = self.send(method, url, body, key);
        Box::pin(async move {
            let (status, body) = sent.await?;
            if settled(status, &body) {
                Ok(())
            } else {
                Err(answer_error(status, &body))
            }
        })
    }

    fn members(
        &self,
    ) -> futures_util::future::LocalBoxFuture<
        'static,
        Result<Option<BTreeSet<String>>, DeliveryError>,
    > {
        let kind = self.settings.kind;
        let g = enc(&self.settings.access_group);
        let this = self.clone();
        Box::pin(async move {
            let mut members = BTreeSet::new();
            let mut start = 0usize;
            for _ in 0..MAX_PAGES {
                let path = match kind {
                    ConnectorKind::Webhook => return Ok(None),
                    ConnectorKind::Jira => format!(
                        "/rest/api/2/group/member?groupname={g}&includeInactiveUsers=true&startAt={start}&maxResults=50"
                    ),
                    ConnectorKind::Confluence => {
                        format!("/rest/api/group/{g}/member?start={start}&limit={CONFLUENCE_PAGE}")
                    }
                    ConnectorKind::Bitbucket => format!(
                        "/rest/api/latest/admin/groups/more-members?context={g}&start={start}&limit=500"
                    ),
                };
                let (status, body) = this.send(Method::GET, this.url(&path), None, None).await?;
                if !(200..300).contains(&status) {
                    return Err(answer_error(status, &body));
                }
                let (names, next) = members_page(kind, &body, start)?;
                members.extend(names);
                match next {
                    Some(n) => start = n,
                    None => return Ok(Some(members)),
                }
            }
            Err(DeliveryError::Network(
                "the product's member list did not end".into(),
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(kind: ConnectorKind, add: bool) -> Call {
        let mut settings = ConnectorSettings::new(kind, "http://product.example/ctx/", "the users");
        settings.credentials_file = Some("null".into());
        let t = HttpTransport {
            client: Client::default(),
            product: "p1".into(),
            settings,
            credentials: Arc::new(CredentialFiles::default()),
        };
        t.plan(&GroupChange {
            user: "ann b".into(),
            add,
            id: "p1:7:ann b:add".into(),
        })
    }

    #[actix_rt::test]
    async fn https_products_are_reached_over_tls() {
        // A plain TCP peer that answers garbage: the client must attempt a TLS handshake
        // (and fail it), not refuse the scheme.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        listener.set_nonblocking(true).expect("nonblocking");
        let peer = std::thread::spawn(move || {
            use std::io::{Read, Write};
            let deadline = std::time::Instant::now() + Duration::from_secs(5);
            while std::time::Instant::now() < deadline {
                if let Ok((mut conn, _)) = listener.accept() {
                    let _ = conn.set_nonblocking(false);
                    let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
                    let mut hello = [0u8; 5];
                    let _ = conn.read_exact(&mut hello);
                    let _ = conn.write_all(b"HTTP/1.1 400 not tls\r\n\r\n");
                    return hello;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            [0; 5]
        });
        let mut settings = ConnectorSettings::new(
            ConnectorKind::Webhook,
            &format!("https://127.0.0.1:{port}/hook"),
            "g",
        );
        settings.timeout_s = 5;
        let t = HttpTransport::new("p", &settings, Arc::default());
        let err = t
            .deliver(GroupChange {
                user: "u".into(),
                add: true,
                id: "i".into(),
            })
            .await
            .expect_err("not a TLS server");
        let hello = peer.join().expect("peer");
        assert_eq!(hello[0], 0x16, "a TLS handshake record was sent: {err}");
        assert!(matches!(err, DeliveryError::Network(_)), "{err}");
    }

    /// Names resolve in the secrets dir or to the config file's own entries; anything
    /// else (an absolute path recorded by an older version, `..`) resolves to nothing, and
    /// the refusal names no path.
    #[test]
    fn credentials_names_resolve_only_inside_the_secrets_dir_or_the_config() {
        let files = CredentialFiles {
            secrets_dir: "/srv/secrets".into(),
            named: [("jira-prod".to_string(), "/etc/slotpool/jira.cred".into())].into(),
        };
        assert_eq!(files.path_of("a.cred"), Some("/srv/secrets/a.cred".into()));
        assert_eq!(
            files.path_of("jira-prod"),
            Some("/etc/slotpool/jira.cred".into())
        );
        for bad in ["/etc/passwd", "../x", "a/../../b", ""] {
            assert_eq!(files.path_of(bad), None, "{bad:?}");
        }
        let mut settings = ConnectorSettings::new(ConnectorKind::Jira, "http://j", "g");
        settings.credentials_file = Some("/etc/passwd".into());
        let Err(DeliveryError::Credentials(why)) =
            HttpTransport::credentials("p", &settings, &files)
        else {
            panic!("an absolute path is refused");
        };
        assert!(!why.contains('/'), "{why}");
        settings.credentials_file = Some("missing.cred".into());
        let Err(DeliveryError::Credentials(why)) =
            HttpTransport::credentials("p", &settings, &files)
        else {
            panic!("a missing file is an error");
        };
        assert!(!why.contains('/') && !why.contains("os error"), "{why}");
    }

    #[test]
    fn member_pages_of_each_kind_are_read_to_the_end() {
        let (names, next) = members_page(
            ConnectorKind::Jira,
            r#"{"isLast":false,"values":[{"name":"a"},{"name":"b"}]}"#,
            0,
        )
        .expect("jira page");
        assert_eq!(
            (names, next),
            (vec!["a".to_string(), "b".to_string()], Some(2))
        );
        let (_, next) = members_page(
            ConnectorKind::Jira,
            r#"{"isLast":true,"values":[{"name":"c"}]}"#,
            2,
        )
        .expect("last page");
        assert_eq!(next, None);
        let (names, next) = members_page(
            ConnectorKind::Bitbucket,
            r#"{"isLastPage":false,"nextPageStart":25,"values":[{"name":"x"}]}"#,
            0,
        )
        .expect("bitbucket page");
        assert_eq!((names, next), (vec!["x".to_string()], Some(25)));
        let (names, next) = members_page(
            ConnectorKind::Confluence,
            r#"{"results":[{"username":"u1","type":"known"}],"size":1}"#,
            0,
        )
        .expect("confluence page");
        assert_eq!((names, next), (vec!["u1".to_string()], None));
        let full: Vec<Value> = (0..CONFLUENCE_PAGE)
            .map(|i| json!({"username": format!("u{i}")}))
            .collect();
        let (_, next) = members_page(
            ConnectorKind::Confluence,
            &json!({"results": full}).to_string(),
            0,
        )
        .expect("a full page");
        assert_eq!(next, Some(CONFLUENCE_PAGE));
        assert!(members_page(ConnectorKind::Jira, "<html>", 0).is_err());
        assert!(members_page(ConnectorKind::Jira, "{}", 0).is_err());
    }

    #[actix_rt::test]
    async fn each_kind_calls_its_documented_endpoint() {
        let c = plan(ConnectorKind::Jira, true);
        assert_eq!(c.method, Method::POST);
        assert_eq!(
            c.url,
            "http://product.example/ctx/rest/api/2/group/user?groupname=the%20users"
        );
        assert_eq!(c.body, Some(json!({"name": "ann b"})));
        let c = plan(ConnectorKind::Jira, false);
        assert_eq!(c.method, Method::DELETE);
        assert_eq!(
            c.url,
            "http://product.example/ctx/rest/api/2/group/user?groupname=the%20users&username=ann%20b"
        );
        let c = plan(ConnectorKind::Confluence, true);
        assert_eq!(c.method, Method::PUT);
        assert_eq!(
            c.url,
            "http://product.example/ctx/rest/api/user/ann%20b/group/the%20users"
        );
        assert_eq!(
            plan(ConnectorKind::Confluence, false).method,
            Method::DELETE
        );
        let c = plan(ConnectorKind::Bitbucket, true);
        assert_eq!(
            (c.method, c.url.as_str()),
            (
                Method::POST,
                "http://product.example/ctx/rest/api/latest/admin/users/add-groups"
            )
        );
        assert_eq!(
            c.body,
            Some(json!({"user": "ann b", "groups": ["the users"]}))
        );
        let c = plan(ConnectorKind::Bitbucket, false);
        assert!(c.url.ends_with("/rest/api/latest/admin/users/remove-group"));
        assert_eq!(
            c.body,
            Some(json!({"context": "ann b", "itemName": "the users"}))
        );
        let c = plan(ConnectorKind::Webhook, true);
        assert_eq!(c.url, "http://product.example/ctx/");
        assert_eq!(c.key.as_deref(), Some("p1:7:ann b:add"));
        assert_eq!(
            c.body,
            Some(json!({"product": "p1", "user": "ann b", "action": "add",
                        "group": "the users", "id": "p1:7:ann b:add"}))
        );
    }

    #[test]
    fn space_permission_shapes_are_confluence_ones() {
        assert_eq!(
            permission_body("ann", &SpaceOperation::new("read", "space")),
            json!({"subject": {"type": "user", "identifier": "ann"},
                   "operation": {"key": "read", "target": "space"}})
        );
        assert!(already_granted(400, "Permission already exists"));
        assert!(!already_granted(400, "No space with key : X"));
        assert!(!already_granted(500, "already"));
        let (spaces, more) = spaces_page(
            r#"{"results":[{"key":"DOCS","name":"Docs"},{"key":"X"},{"name":"no key"}],"size":3}"#,
        )
        .expect("a page");
        assert_eq!(
            spaces,
            vec![("DOCS".into(), "Docs".into()), ("X".into(), "X".into())]
        );
        assert!(!more);
        assert!(spaces_page("{}").is_err());
        let space = json!({"key": "DOCS", "permissions": [
            {"id": 1, "operation": {"operation": "read", "targetType": "space"},
             "subjects": {"group": {"results": [{"name": "confluence-users"}]}}},
            {"id": 2, "operation": {"operation": "create", "targetType": "page"},
             "subjects": {"user": {"results": [{"username": "ann"}]}}},
            {"id": 3, "operation": {"operation": "read", "targetType": "space"},
             "subjects": {"user": {"results": [{"username": "ann"}]}}}
        ]})
        .to_string();
        let read = SpaceOperation::new("read", "space");
        assert_eq!(permission_id_in(&space, "ann", &read), Some(3));
        assert_eq!(permission_id_in(&space, "bob", &read), None);
        assert_eq!(permission_id_in("<html>", "ann", &read), None);
    }

    #[test]
    fn already_and_not_a_member_answers_are_successes() {
        assert!(settled(201, ""));
        assert!(settled(204, ""));
        assert!(settled(
            400,
            r#"{"errorMessages":["Cannot add user. 'ann' is already a member of 'g'"]}"#
        ));
        assert!(settled(404, "user ann is not a member of g"));
        assert!(!settled(400, "group does not exist"));
        assert!(!settled(500, "already a member"));
        assert!(!settled(401, ""));
    }
}
