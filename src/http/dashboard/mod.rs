//! The administrator's dashboard, `/admin/`: sign-in with the admin token, then products
//! and their settings (edit, resize), live holders (inactivity, pending warnings), the
//! queue, revoke, sync now, notices, charts over time and the user-peak view.
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

use super::auth::{app_state, check_product_id, check_user_name};
use super::view::{HolderView, NoticeView, ProductView, QueueView};
use super::AppState;
use crate::http::pages::lang::Lang;
use crate::problem::Problem;
use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use form::Fields;
use session::Session;
use slotpool_actors::{ask, Execute, ListHolders, ProductActor, Read};
use slotpool_events::{Command, ProductKind, Settings};

/// Registers the dashboard's routes.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/admin", web::get().to(to_index))
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
        .route("/admin/products/{product}/peaks", web::get().to(peaks_page));
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

fn not_signed_in() -> Problem {
    Problem::new(
        StatusCode::UNAUTHORIZED,
        "not_signed_in",
        "Not signed in",
        "sign in to the dashboard at /admin/ first",
    )
}

/// The session of a form post, with its CSRF token checked.
fn form_session(req: &HttpRequest, fields: &Fields) -> Result<Session, Problem> {
    let session = Session::of(req).ok_or_else(not_signed_in)?;
    session.check_csrf(fields.get("csrf"))?;
    Ok(session)
}

async fn to_index() -> HttpResponse {
    see_other("/admin/")
}

/// Every product's overview, sorted by id.
async fn products(state: &AppState) -> Result<Vec<ProductView>, Problem> {
    let mut out = Vec::new();
    for (id, addr) in state.services.products.all() {
        let view = ask(
            &addr,
            Read::maybe(move |s, _| {
                s.settings()
                    .map(|settings| ProductView::new(&id, settings.clone(), s.counts()))
            }),
        )
        .await?;
        out.extend(view);
    }
    out.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(out)
}

async fn notices(state: &AppState, only: Option<&str>) -> Result<Vec<NoticeView>, Problem> {
    let mut out = Vec::new();
    for (id, addr) in state.services.products.all() {
        if only.is_some_and(|o| o != id) {
            continue;
        }
        let list = ask(
            &addr,
            Read::maybe(move |s, _| {
                s.notices()
                    .map(|n| NoticeView::new(&id, n))
                    .collect::<Vec<_>>()
            }),
        )
        .await?;
        out.extend(list);
    }
    out.sort_by(|a, b| b.at.cmp(&a.at));
    if let Some((damage, at)) = state.journal_damage.get() {
        out.insert(0, NoticeView::journal_damaged(damage, *at));
    }
    Ok(out)
}

/// `GET /admin/`: the sign-in form, or the list of products.
async fn index(req: HttpRequest) -> Result<HttpResponse, Problem> {
    let state = app_state(&req)?;
    let Some(session) = Session::of(&req) else {
        let (cookie, token) = session::login_nonce(session::is_https(&req));
        let mut res = html(StatusCode::OK, views::login(Lang::of(&req), &token, None));
        res.add_cookie(&cookie).map_err(internal)?;
        return Ok(res);
    };
    let list = products(state).await?;
    let notices = notices(state, None).await?;
    let flash = flash_of(&req);
    Ok(html(
        StatusCode::OK,
        views::index(Lang::of(&req), &session, &list, &notices, flash.as_ref()),
    ))
}

fn internal(e: impl std::fmt::Display) -> Problem {
    Problem::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal_error",
        "Internal error",
        e.to_string(),
    )
}

/// `POST /admin/login`: the admin token for a session cookie.
async fn login(req: HttpRequest, body: web::Bytes) -> Result<HttpResponse, Problem> {
    let state = app_state(&req)?;
    let fields = Fields::parse(&body);
    session::check_login_csrf(&req, fields.get("csrf").unwrap_or(""))?;
    let token = fields.get("token").unwrap_or("");
    if !state.admin_token.matches(token.trim()) {
        let (cookie, csrf) = session::login_nonce(session::is_https(&req));
        let mut res = html(
            StatusCode::UNAUTHORIZED,
            views::login(
                Lang::of(&req),
                &csrf,
                Some(views::t(Lang::of(&req), "That is not the admin token.")),
            ),
        );
        res.add_cookie(&cookie).map_err(internal)?;
        return Ok(res);
    }
    let session = Session::new();
    let mut res = see_other("/admin/");
    res.add_cookie(&session.cookie(session::is_https(&req)))
        .map_err(internal)?;
    res.add_cookie(&session::removal(session::LOGIN_COOKIE))
        .map_err(internal)?;
    Ok(res)
}

/// `POST /admin/logout`.
async fn logout(req: HttpRequest, body: web::Bytes) -> Result<HttpResponse, Problem> {
    form_session(&req, &Fields::parse(&body))?.sign_out();
    let mut res = see_other("/admin/");
    res.add_cookie(&session::removal(session::SESSION_COOKIE))
        .map_err(internal)?;
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

async fn execute(addr: &actix::Addr<ProductActor>, command: Command) -> Result<(), Problem> {
    ask(
        addr,
        Execute {
            command,
            cause: crate::http::observe::cause(),
        },
    )
    .await?;
    Ok(())
}

/// `POST /admin/products`: a new product from the form on the index page.
async fn create_product(req: HttpRequest, body: web::Bytes) -> Result<HttpResponse, Problem> {
    let state = app_state(&req)?;
    let fields = Fields::parse(&body);
    let session = form_session(&req, &fields)?;
    let id = fields.get("id").unwrap_or("").trim().to_string();
    let built = check_product_id(&id).and_then(|_| {
        let kind = form::kind(fields.get("kind").unwrap_or("generic"))?;
        let tier = fields.number("licence_tier")?;
        let slots = fields.number("shared_slots")?;
        let settings = Settings::new(kind, tier, slots);
        settings.validate(0).map_err(Problem::invalid_settings)?;
        Ok(settings)
    });
    let settings = match built {
        Ok(s) => s,
        Err(p) => {
            let list = products(state).await?;
            let notices = notices(state, None).await?;
            return Ok(html(
                p.status,
                views::index(
                    Lang::of(&req),
                    &session,
                    &list,
                    &notices,
                    Some(&views::Flash::bad(&p.detail)),
                ),
            ));
        }
    };
    if state.services.products.get(&id).is_some() {
        let list = products(state).await?;
        let notices = notices(state, None).await?;
        let flash = views::Flash::bad(&format!("a product {id:?} exists already"));
        return Ok(html(
            StatusCode::CONFLICT,
            views::index(Lang::of(&req), &session, &list, &notices, Some(&flash)),
        ));
    }
    let addr = state.services.products.get_or_start(&id);
    execute(&addr, Command::Configure(settings)).await?;
    Ok(see_other(&format!(
        "products/{}?done=created",
        form::path_segment(&id)
    )))
}

/// Everything the product page shows.
pub struct ProductData {
    pub overview: ProductView,
    pub holders: Vec<HolderView>,
    pub queue: Vec<QueueView>,
    pub notices: Vec<NoticeView>,
    pub now_ms: i64,
}

async fn product_data(state: &AppState, id: &str) -> Result<ProductData, Problem> {
    let addr = state.product(id)?;
    let pid = id.to_string();
    let (overview, queue, now) = ask(
        &addr,
        Read::new(move |s, now| {
            (
                s.settings()
                    .map(|settings| ProductView::new(&pid, settings.clone(), s.counts())),
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
        notices: notices(state, Some(id)).await?,
        now_ms: now.as_millis(),
    })
}

/// `GET /admin/products/{p}`.
async fn product_page(req: HttpRequest, path: web::Path<String>) -> Result<HttpResponse, Problem> {
    let state = app_state(&req)?;
    let Some(session) = Session::of(&req) else {
        return Ok(see_other("/admin/"));
    };
    let data = product_data(state, &path).await?;
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

/// Runs a configure command; a refusal is shown on the product page.
async fn configure(
    req: &HttpRequest,
    state: &AppState,
    session: &Session,
    id: &str,
    settings: Result<Settings, Problem>,
    done: &str,
) -> Result<HttpResponse, Problem> {
    let addr = state.product(id)?;
    let result = match settings {
        Ok(s) => execute(&addr, Command::Configure(s)).await,
        Err(p) => Err(p),
    };
    match result {
        Ok(()) => Ok(see_other(&format!(
            "../{}?done={done}",
            form::path_segment(id)
        ))),
        Err(p) if p.status.is_client_error() => {
            product_with_error(req, state, session, id, p).await
        }
        Err(p) => Err(p),
    }
}

/// `POST /admin/products/{p}/settings`: every setting from the settings form.
async fn save_settings(
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, Problem> {
    let state = app_state(&req)?;
    let fields = Fields::parse(&body);
    let session = form_session(&req, &fields)?;
    let addr = state.product(&path)?;
    let current = current_settings(&addr).await?;
    let updated = form::apply_settings(current, &fields);
    configure(&req, state, &session, &path, updated, "saved").await
}

/// `POST /admin/products/{p}/resize`: a new `shared_slots`.
async fn resize(
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, Problem> {
    let state = app_state(&req)?;
    let fields = Fields::parse(&body);
    let session = form_session(&req, &fields)?;
    let addr = state.product(&path)?;
    let current = current_settings(&addr).await?;
    let updated = fields.number("shared_slots").map(|n| Settings {
        shared_slots: n,
        ..current
    });
    configure(&req, state, &session, &path, updated, "resized").await
}

/// `POST /admin/products/{p}/revoke`: revoke one holder's slot now (reason `admin`).
async fn revoke(
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, Problem> {
    let state = app_state(&req)?;
    let fields = Fields::parse(&body);
    let session = form_session(&req, &fields)?;
    let addr = state.product(&path)?;
    let user = fields.get("user").unwrap_or("").to_string();
    let result = match check_user_name(&user) {
        Ok(()) => execute(&addr, Command::Revoke { user }).await,
        Err(p) => Err(p),
    };
    match result {
        Ok(()) => Ok(see_other(&format!(
            "../{}?done=revoked",
            form::path_segment(&path)
        ))),
        Err(p) if p.status.is_client_error() => {
            product_with_error(&req, state, &session, &path, p).await
        }
        Err(p) => Err(p),
    }
}

/// `GET /admin/products/{p}/charts?range=day|week`.
async fn charts_page(req: HttpRequest, path: web::Path<String>) -> Result<HttpResponse, Problem> {
    let state = app_state(&req)?;
    let Some(session) = Session::of(&req) else {
        return Ok(see_other("/admin/"));
    };
    let addr = state.product(&path)?;
    let now = ask(&addr, Read::new(|_, now| now)).await?;
    let range = form::query_value(&req, "range");
    let week = range.as_deref() == Some("week");
    let journal = state.services.products.journal().clone();
    let id = path.clone();
    let series = web::block(move || series::minute_series(&journal, &id, now, week))
        .await
        .map_err(internal)??;
    Ok(html(
        StatusCode::OK,
        views::charts(Lang::of(&req), &session, &path, week, &series),
    ))
}

/// `GET /admin/products/{p}/peaks?share=95`: the user-peak view.
async fn peaks_page(req: HttpRequest, path: web::Path<String>) -> Result<HttpResponse, Problem> {
    let state = app_state(&req)?;
    let Some(session) = Session::of(&req) else {
        return Ok(see_other("/admin/"));
    };
    let addr = state.product(&path)?;
    let now = ask(&addr, Read::new(|_, now| now)).await?;
    let share = form::query_value(&req, "share")
        .and_then(|s| s.parse::<u32>().ok())
        .filter(|s| (1..=100).contains(s))
        .unwrap_or(95);
    let journal = state.services.products.journal().clone();
    let id = path.clone();
    let peaks = web::block(move || series::peaks(&journal, &id, now, share))
        .await
        .map_err(internal)??;
    Ok(html(
        StatusCode::OK,
        views::peaks(Lang::of(&req), &session, &path, share, &peaks),
    ))
}

/// For [`form::kind`]'s callers elsewhere.
pub fn kind_code(kind: ProductKind) -> &'static str {
    match kind {
        ProductKind::Jira => "jira",
        ProductKind::Confluence => "confluence",
        ProductKind::Bitbucket => "bitbucket",
        ProductKind::Jsm => "jsm",
        ProductKind::Generic => "generic",
    }
}
