//! The administrator's dashboard, `/admin/`: sign-in with the admin token, then products
//! and their settings (edit, resize), live holders (inactivity, pending warnings), the
//! queue, revoke, sync now, notices, charts over time, the user-peak view, the gate
//! policies (mode, bypass rules, API prefixes) and the shadow run's figures.
//!
//! Server-rendered HTML (`maud`, escaping every value), one small script for progressive
//! touches (`static/dashboard.js`), no inline script or style. Every form carries the
//! session's CSRF token and is checked here before anything is sent to an actor; the
//! handlers stay thin: they turn a form into the same command the admin API sends.

pub mod charts;
pub mod form;
pub mod series;
pub mod session;
pub mod views;

use super::admin;
use super::auth::{check_product_id, check_user_name};
use super::AppState;
use super::{configure, execute};
use crate::http::pages::lang::Lang;
use crate::problem::Problem;
use crate::view::{HolderView, NoticeView, ProductView, QueueView};
use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use form::Fields;
use session::Session;
use slotpool_actors::{ask, ListHolders, ProductActor, Read};
use slotpool_events::{Command, Settings, Timestamp};
use slotpool_journal::Journal;

/// The largest form body the dashboard reads (its forms are read whole, as `web::Bytes`):
/// a queue page's logo is up to 96 KiB, a third more in base64, more again URL-encoded.
/// A follower forwards bodies up to this size too.
pub const FORM_BYTES: usize = 256 * 1024;

/// Registers the dashboard's routes.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.app_data(web::PayloadConfig::new(FORM_BYTES))
        .route("/admin", web::get().to(to_index))
        .route("/admin/", web::get().to(index))
        .route("/admin/login", web::post().to(login))
        .route("/admin/logout", web::post().to(logout))
        .route("/admin/products", web::post().to(create_product))
        .route("/admin/products/{product}", web::get().to(product_page))
        .route(
            "/admin/products/{product}/settings",
            web::post().to(save_settings),
        )
        .route("/admin/products/{product}/resize", web::post().to(resize))
        .route("/admin/products/{product}/revoke", web::post().to(revoke))
        .route(
            "/admin/products/{product}/charts",
            web::get().to(charts_page),
        )
        .route("/admin/products/{product}/peaks", web::get().to(peaks_page))
        .route(
            "/admin/products/{product}/gate",
            web::post().to(save_gate_policies),
        )
        .route(
            "/admin/products/{product}/shadow",
            web::get().to(shadow_page),
        );
}

fn html(status: StatusCode, markup: maud::Markup) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(markup.into_string())
}

fn see_other(location: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, location))
        .finish()
}

/// The session of a form post, with its CSRF token checked.
fn form_session(req: &HttpRequest, fields: &Fields) -> Result<Session, Problem> {
    let session = Session::of(req).ok_or_else(Problem::not_signed_in)?;
    session.check_csrf(fields.get("csrf"))?;
    Ok(session)
}

async fn to_index() -> HttpResponse {
    see_other("/admin/")
}

/// `GET /admin/`: the sign-in form, or the list of products.
async fn index(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, Problem> {
    let Some(session) = Session::of(&req) else {
        return login_page(&req, StatusCode::OK, None);
    };
    let flash = flash_of(&req);
    index_page(&req, &state, &session, StatusCode::OK, flash.as_ref()).await
}

/// The sign-in form with a fresh login nonce (its cookie and the form's CSRF token), and
/// `error` above it when the last attempt failed.
fn login_page(
    req: &HttpRequest,
    status: StatusCode,
    error: Option<&str>,
) -> Result<HttpResponse, Problem> {
    let (cookie, csrf) = session::login_nonce(session::is_https(req));
    let mut res = html(status, views::login(Lang::of(req), &csrf, error));
    res.add_cookie(&cookie).map_err(Problem::internal)?;
    Ok(res)
}

/// The list of products and the notices, answered with `status` and `flash`.
async fn index_page(
    req: &HttpRequest,
    state: &AppState,
    session: &Session,
    status: StatusCode,
    flash: Option<&views::Flash>,
) -> Result<HttpResponse, Problem> {
    let list = admin::product_views(state).await?;
    let notices = admin::notice_views(state, None).await?;
    Ok(html(
        status,
        views::index(Lang::of(req), session, &list, &notices, flash),
    ))
}

/// `POST /admin/login`: the admin token for a session cookie.
async fn login(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> Result<HttpResponse, Problem> {
    let fields = Fields::parse(&body);
    session::check_login_csrf(&req, fields.get("csrf").unwrap_or(""))?;
    let token = fields.get("token").unwrap_or("");
    if !state.admin_token.matches(token.trim()) {
        let error = views::t(Lang::of(&req), "That is not the admin token.");
        return login_page(&req, StatusCode::UNAUTHORIZED, Some(error));
    }
    let session = Session::new();
    let mut res = see_other("/admin/");
    res.add_cookie(&session.cookie(session::is_https(&req)))
        .map_err(Problem::internal)?;
    res.add_cookie(&session::removal(session::LOGIN_COOKIE))
        .map_err(Problem::internal)?;
    Ok(res)
}

/// `POST /admin/logout`.
async fn logout(req: HttpRequest, body: web::Bytes) -> Result<HttpResponse, Problem> {
    form_session(&req, &Fields::parse(&body))?.sign_out();
    let mut res = see_other("/admin/");
    res.add_cookie(&session::removal(session::SESSION_COOKIE))
        .map_err(Problem::internal)?;
    Ok(res)
}

/// A message after a redirect, named by a fixed code in the query (never free text).
pub fn flash_of(req: &HttpRequest) -> Option<views::Flash> {
    let code = url::form_urlencoded::parse(req.query_string().as_bytes())
        .find(|(k, _)| k == "done")
        .map(|(_, v)| v.into_owned())?;
    let text = match code.as_str() {
        "created" => "Product created.",
        "saved" => "Settings saved.",
        "resized" => "Pool resized.",
        "revoked" => "Slot revoked.",
        _ => return None,
    };
    Some(views::Flash::ok(views::t(Lang::of(req), text)))
}

/// `POST /admin/products`: a new product from the form on the index page.
async fn create_product(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> Result<HttpResponse, Problem> {
    let fields = Fields::parse(&body);
    let session = form_session(&req, &fields)?;
    let id = fields.get("id").unwrap_or("").trim().to_string();
    let built = check_product_id(&id).and_then(|_| {
        let kind = form::kind(fields.get("kind").unwrap_or("generic"))?;
        let tier = fields.number("licence_tier")?;
        let slots = fields.number("shared_slots")?;
        Ok(Settings::new(kind, tier, slots))
    });
    let refused = match built {
        Ok(_) if state.services.products.get(&id).is_some() => (
            StatusCode::CONFLICT,
            format!("a product {id:?} exists already"),
        ),
        // The core decides whether the settings are valid, as for the admin API's PUT.
        Ok(settings) => match configure(&state, &id, settings).await {
            Ok(_) => {
                return Ok(see_other(&format!(
                    "products/{}?done=created",
                    form::path_segment(&id)
                )))
            }
            Err(p) if p.status.is_client_error() => (p.status, p.detail),
            Err(p) => return Err(p),
        },
        Err(p) => (p.status, p.detail),
    };
    let flash = views::Flash::bad(&refused.1);
    index_page(&req, &state, &session, refused.0, Some(&flash)).await
}

/// Everything the product page shows.
pub struct ProductData {
    /// Settings and counts.
    pub overview: ProductView,
    /// Who holds a slot now (with inactivity and pending warnings).
    pub holders: Vec<HolderView>,
    /// Who waits, in order.
    pub queue: Vec<QueueView>,
    /// The product's notices, newest first.
    pub notices: Vec<NoticeView>,
    /// The product clock's now, in ms since the epoch (for "for 5 min" texts).
    pub now_ms: i64,
}

async fn product_data(state: &AppState, id: &str) -> Result<ProductData, Problem> {
    let addr = state.product(id)?;
    let pid = id.to_string();
    let (overview, queue, now) = ask(
        &addr,
        Read::new(move |s, now| {
            (
                s.settings().map(|settings| {
                    ProductView::new(&pid, settings.clone(), s.counts())
                        .with_capacity(s.effective_shared_slots(), s.next_capacity_change(now))
                }),
                s.queue().iter().map(QueueView::from).collect::<Vec<_>>(),
                now,
            )
        }),
    )
    .await?;
    let overview = overview.ok_or_else(|| Problem::unknown_product(id))?;
    let holders = ask(&addr, ListHolders)
        .await?
        .iter()
        .map(HolderView::from)
        .collect();
    Ok(ProductData {
        overview,
        holders,
        queue,
        notices: admin::notice_views(state, Some(id)).await?,
        now_ms: now.as_millis(),
    })
}

/// `GET /admin/products/{p}`.
async fn product_page(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, Problem> {
    let Some(session) = Session::of(&req) else {
        return Ok(see_other("/admin/"));
    };
    let data = product_data(&state, &path).await?;
    Ok(html(
        StatusCode::OK,
        views::product(Lang::of(&req), &session, &data, flash_of(&req).as_ref()),
    ))
}

async fn product_with_error(
    req: &HttpRequest,
    state: &AppState,
    session: &Session,
    id: &str,
    problem: Problem,
) -> Result<HttpResponse, Problem> {
    let data = product_data(state, id).await?;
    Ok(html(
        problem.status,
        views::product(
            Lang::of(req),
            session,
            &data,
            Some(&views::Flash::bad(&problem.detail)),
        ),
    ))
}

async fn current_settings(addr: &actix::Addr<ProductActor>) -> Result<Settings, Problem> {
    Ok(ask(addr, Read::new(|s, _| s.settings().cloned()))
        .await?
        .ok_or(slotpool_events::Refusal::UnknownProduct)?)
}

/// Where a form's change leads: back to the product page with `done` in the query, or,
/// for a refusal (a client error), the product page again with the refusal shown.
async fn after_change<T>(
    req: &HttpRequest,
    state: &AppState,
    session: &Session,
    id: &str,
    result: Result<T, Problem>,
    done: &str,
) -> Result<HttpResponse, Problem> {
    match result {
        Ok(_) => Ok(see_other(&format!(
            "../{}?done={done}",
            form::path_segment(id)
        ))),
        Err(p) if p.status.is_client_error() => {
            product_with_error(req, state, session, id, p).await
        }
        Err(p) => Err(p),
    }
}

/// A settings form: the product's current settings, changed by `update` from the form's
/// fields, then configured (the same command as the admin API's `PUT`).
async fn settings_form(
    req: &HttpRequest,
    state: &AppState,
    id: &str,
    body: &[u8],
    done: &str,
    update: impl FnOnce(Settings, &Fields) -> Result<Settings, Problem>,
) -> Result<HttpResponse, Problem> {
    let fields = Fields::parse(body);
    let session = form_session(req, &fields)?;
    let addr = state.product(id)?;
    let current = current_settings(&addr).await?;
    let result = match update(current, &fields) {
        Ok(s) => configure(state, id, s).await,
        Err(p) => Err(p),
    };
    after_change(req, state, &session, id, result, done).await
}

/// `POST /admin/products/{p}/settings`: every setting from the settings form.
async fn save_settings(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, Problem> {
    settings_form(&req, &state, &path, &body, "saved", form::apply_settings).await
}

/// `POST /admin/products/{p}/gate`: the gate policies form (mode, maintenance message,
/// bypass rules, API prefixes).
async fn save_gate_policies(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, Problem> {
    settings_form(
        &req,
        &state,
        &path,
        &body,
        "gate",
        form::apply_gate_policies,
    )
    .await
}

/// `POST /admin/products/{p}/resize`: a new `shared_slots`.
async fn resize(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, Problem> {
    settings_form(&req, &state, &path, &body, "resized", |current, fields| {
        fields.number("shared_slots").map(|n| Settings {
            shared_slots: n,
            ..current
        })
    })
    .await
}

/// `POST /admin/products/{p}/revoke`: revoke one holder's slot now (reason `admin`).
async fn revoke(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, Problem> {
    let fields = Fields::parse(&body);
    let session = form_session(&req, &fields)?;
    let addr = state.product(&path)?;
    let user = fields.get("user").unwrap_or("").to_string();
    let result = match check_user_name(&user) {
        Ok(()) => execute(&state, &addr, Command::Revoke { user }).await,
        Err(p) => Err(p),
    };
    after_change(&req, &state, &session, &path, result, "revoked").await
}

/// A signed-in page computed from the product's journal, off the async threads:
/// `compute` gets the journal, the product's id, its clock's `now` and the page's `choice`
/// (from its query), `render` shows the result. Without a session, back to sign-in.
async fn journal_page<P, T>(
    req: &HttpRequest,
    state: &AppState,
    id: &str,
    choice: P,
    compute: fn(&Journal, &str, Timestamp, P) -> Result<T, Problem>,
    render: fn(Lang, &Session, &str, P, &T) -> maud::Markup,
) -> Result<HttpResponse, Problem>
where
    P: Copy + Send + 'static,
    T: Send + 'static,
{
    let Some(session) = Session::of(req) else {
        return Ok(see_other("/admin/"));
    };
    let addr = state.product(id)?;
    let now = ask(&addr, Read::new(|_, now| now)).await?;
    let journal = state.services.products.journal().clone();
    let product = id.to_string();
    let computed = web::block(move || compute(&journal, &product, now, choice))
        .await
        .map_err(Problem::internal)??;
    Ok(html(
        StatusCode::OK,
        render(Lang::of(req), &session, id, choice, &computed),
    ))
}

/// `GET /admin/products/{p}/charts?range=day|week`.
async fn charts_page(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, Problem> {
    let week = form::query_value(&req, "range").as_deref() == Some("week");
    journal_page(
        &req,
        &state,
        &path,
        week,
        series::minute_series,
        views::charts,
    )
    .await
}

/// `GET /admin/products/{p}/shadow`: the figures of the product's latest shadow run
/// (passthrough mode), from the journal.
async fn shadow_page(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, Problem> {
    journal_page(&req, &state, &path, (), series::shadow_run, views::shadow).await
}

/// `GET /admin/products/{p}/peaks?share=95`: the user-peak view.
async fn peaks_page(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, Problem> {
    let share = form::query_value(&req, "share")
        .and_then(|s| s.parse::<u32>().ok())
        .filter(|s| (1..=100).contains(s))
        .unwrap_or(95);
    journal_page(&req, &state, &path, share, series::peaks, views::peaks).await
}
