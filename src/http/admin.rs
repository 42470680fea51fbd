//! The admin API: products and their settings, members, fixed licences, users, holders,
//! queue and revocation.

use super::auth::{check_product_id, check_user_name, Admin};
use super::body::read_json;
use super::call::{AdminPath, AdminProduct, AdminProductUser};
use super::AppState;
use crate::problem::Problem;
use crate::view::{
    HolderView, NoticeView, ProductView, QueueView, SyncReportView, UserView,
    READ_ONLY_PRODUCT_FIELDS,
};
use actix_web::{web, HttpResponse};
use serde::Deserialize;
use slotpool_actors::{
    ask, ListHolders, ListUsers, LookupUser, Membership, ProductActor, Provision, Read,
    ReadDirectory, SetUserActive, SyncProduct,
};
use slotpool_events::{Command, Settings};

async fn overview(
    id: &str,
    addr: &actix::Addr<ProductActor>,
) -> Result<Option<ProductView>, Problem> {
    let id = id.to_string();
    Ok(ask(
        addr,
        Read::maybe(move |s, now| {
            s.settings().map(|settings| {
                ProductView::new(&id, settings.clone(), s.counts())
                    .with_reservation_use(s.reservation_use())
                    .with_capacity(s.effective_shared_slots(), s.next_capacity_change(now))
            })
        }),
    )
    .await?)
}

/// `PUT /admin/v1/products/{p}`: create (201) or update (200) a product's settings. The
/// body's shape is read here; whether the settings are valid, and what they change
/// (rule 10's groups included), is the core's word, through [`super::configure`].
pub async fn put_product(call: AdminPath, body: web::Payload) -> Result<HttpResponse, Problem> {
    let AdminPath(state, path) = call;
    check_product_id(&path)?;
    let mut doc: serde_json::Value =
        read_json(body, state.max_body_bytes, Problem::invalid_settings).await?;
    let Some(fields) = doc.as_object_mut() else {
        return Err(Problem::invalid_settings(
            "the settings must be a JSON object".into(),
        ));
    };
    for f in READ_ONLY_PRODUCT_FIELDS {
        fields.remove(f);
    }
    let settings: Settings =
        serde_json::from_value(doc).map_err(|e| Problem::invalid_settings(e.to_string()))?;
    let done = super::configure(&state, &path, settings).await?;
    let addr = state.product(&path)?;
    let view = overview(&path, &addr)
        .await?
        .ok_or_else(|| Problem::unknown_product(&path))?;
    Ok(if done.created {
        HttpResponse::Created().json(view)
    } else {
        HttpResponse::Ok().json(view)
    })
}

/// `GET /admin/v1/products/{p}`: settings and counts.
pub async fn get_product(AdminProduct(product): AdminProduct) -> Result<HttpResponse, Problem> {
    let view = overview(&product.id, &product.addr)
        .await?
        .ok_or_else(|| Problem::unknown_product(&product.id))?;
    Ok(HttpResponse::Ok().json(view))
}

/// Every configured product's overview, sorted by id (the admin API's list and the
/// dashboard's index).
pub(crate) async fn product_views(state: &AppState) -> Result<Vec<ProductView>, Problem> {
    let mut out = Vec::new();
    for (id, addr) in state.services.products.all() {
        if let Some(view) = overview(&id, &addr).await? {
            out.push(view);
        }
    }
    Ok(out)
}

/// `GET /admin/v1/products`: every product.
pub async fn list_products(_: Admin, state: web::Data<AppState>) -> Result<HttpResponse, Problem> {
    Ok(HttpResponse::Ok().json(product_views(&state).await?))
}

/// Has the directory make the change `membership` names for the path's `{product}/{user}`
/// (it creates an unknown user active); 204 once done.
async fn provision(
    AdminProductUser(call): AdminProductUser,
    membership: fn(String) -> Membership,
) -> Result<HttpResponse, Problem> {
    call.product
        .state
        .services
        .directory
        .send(Provision {
            product: call.product.addr,
            change: membership(call.user),
            cause: super::observe::cause(),
        })
        .await??;
    Ok(HttpResponse::NoContent().finish())
}

/// `PUT /admin/v1/products/{p}/members/{user}`: enrol (an unknown user is created active).
pub async fn enrol(call: AdminProductUser) -> Result<HttpResponse, Problem> {
    provision(call, Membership::Enrol).await
}

/// `DELETE /admin/v1/products/{p}/members/{user}`: remove from the pool.
pub async fn remove(call: AdminProductUser) -> Result<HttpResponse, Problem> {
    call.0.execute(|user| Command::Remove { user }).await
}

/// `PUT /admin/v1/products/{p}/fixed/{user}`: give a fixed licence.
pub async fn give_fixed(call: AdminProductUser) -> Result<HttpResponse, Problem> {
    provision(call, Membership::GiveFixed).await
}

/// `DELETE /admin/v1/products/{p}/fixed/{user}`: take a fixed licence away.
pub async fn take_fixed(call: AdminProductUser) -> Result<HttpResponse, Problem> {
    call.0.execute(|user| Command::TakeFixed { user }).await
}

/// `GET /admin/v1/products/{p}/holders`.
pub async fn holders(AdminProduct(product): AdminProduct) -> Result<HttpResponse, Problem> {
    let holders = ask(&product.addr, ListHolders).await?;
    let list: Vec<HolderView> = holders.iter().map(HolderView::from).collect();
    Ok(HttpResponse::Ok().json(list))
}

/// `GET /admin/v1/products/{p}/queue`.
pub async fn queue(AdminProduct(product): AdminProduct) -> Result<HttpResponse, Problem> {
    let list = ask(
        &product.addr,
        Read::new(|s, _| s.queue().iter().map(QueueView::from).collect::<Vec<_>>()),
    )
    .await?;
    Ok(HttpResponse::Ok().json(list))
}

/// `DELETE /admin/v1/products/{p}/holders/{user}`: revoke now, reason `admin`.
pub async fn revoke(call: AdminProductUser) -> Result<HttpResponse, Problem> {
    call.0.execute(|user| Command::Revoke { user }).await
}

/// The body of `PUT /admin/v1/users/{user}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserUpdate {
    /// `false` deactivates at once: every slot and queue place is lost.
    pub active: bool,
}

/// `PUT /admin/v1/users/{user}`: create, activate or deactivate a user.
pub async fn put_user(call: AdminPath, body: web::Payload) -> Result<HttpResponse, Problem> {
    let AdminPath(state, user) = call;
    check_user_name(&user)?;
    let update: UserUpdate = read_json(body, state.max_body_bytes, Problem::invalid_body).await?;
    let set = state
        .services
        .directory
        .send(SetUserActive {
            user: user.clone(),
            active: update.active,
            cause: super::observe::cause(),
        })
        .await??;
    Ok(HttpResponse::Ok().json(UserView {
        user,
        active: set.active,
    }))
}

/// `GET /admin/v1/users/{user}`.
pub async fn get_user(call: AdminPath) -> Result<HttpResponse, Problem> {
    let AdminPath(state, user) = call;
    check_user_name(&user)?;
    let found = state
        .services
        .directory
        .send(LookupUser { user: user.clone() })
        .await??
        .ok_or_else(|| Problem::no_such_user(format!("no user {:?}", user.as_str())))?;
    Ok(HttpResponse::Ok().json(UserView {
        user,
        active: found.active,
    }))
}

/// `GET /admin/v1/users`: every user.
pub async fn list_users(_: Admin, state: web::Data<AppState>) -> Result<HttpResponse, Problem> {
    let users = state.services.directory.send(ListUsers).await??;
    let out: Vec<UserView> = users
        .into_iter()
        .map(|u| UserView {
            user: u.user,
            active: u.active,
        })
        .collect();
    Ok(HttpResponse::Ok().json(out))
}

/// `POST /admin/v1/products/{p}/sync`: synchronise the pool with its source groups now
/// (rule 9); answers with the report, which `GET` shows until the next sync.
pub async fn run_sync(AdminProduct(product): AdminProduct) -> Result<HttpResponse, Problem> {
    let report = product
        .state
        .services
        .directory
        .send(SyncProduct {
            id: product.id,
            product: product.addr,
            trigger: "manual",
            cause: crate::http::observe::cause(),
        })
        .await??;
    Ok(HttpResponse::Ok().json(SyncReportView::from(report)))
}

/// `GET /admin/v1/products/{p}/sync`: the report of the product's last sync; 404
/// `no_sync` before the first.
pub async fn sync_report(AdminProduct(product): AdminProduct) -> Result<HttpResponse, Problem> {
    let super::call::Product { state, id, .. } = product;
    let wanted = id.clone();
    let report = state
        .services
        .directory
        .send(ReadDirectory::new(move |d| d.sync_report(&wanted).cloned()))
        .await??
        .ok_or_else(|| Problem::no_sync(&id))?;
    Ok(HttpResponse::Ok().json(SyncReportView::from(report)))
}

/// What rules raised for administrators (of product `only`, or of every product), newest
/// first, after a notice of journal damage found at start (the admin API and the
/// dashboard).
pub(crate) async fn notice_views(
    state: &AppState,
    only: Option<&str>,
) -> Result<Vec<NoticeView>, Problem> {
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

/// `GET /admin/v1/notices`: what rules raised for administrators, newest first.
pub async fn notices(_: Admin, state: web::Data<AppState>) -> Result<HttpResponse, Problem> {
    Ok(HttpResponse::Ok().json(notice_views(&state, None).await?))
}

/// `GET /admin/v1/notices/stream`: notices as Server-Sent Events (`event: notice`), as
/// they are raised.
pub async fn notices_stream(_: Admin, state: web::Data<AppState>) -> Result<HttpResponse, Problem> {
    let rx = state.services.products.subscribe_notices();
    let keep_alive = tokio::time::interval(slotpool_actors::session::KEEP_ALIVE);
    let body = futures_util::stream::unfold((rx, keep_alive), |(mut rx, mut tick)| async move {
        let bytes = tokio::select! {
            received = rx.recv() => match received {
                Ok(n) => {
                    let view = NoticeView::new(&n.product, &n.notice);
                    let data = serde_json::to_string(&view).unwrap_or_default();
                    web::Bytes::from(format!("event: notice\ndata: {data}\n\n"))
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                    web::Bytes::from(format!(": {n} notices skipped; see GET /admin/v1/notices\n\n"))
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
            },
            _ = tick.tick() => web::Bytes::from_static(b": keep-alive\n\n"),
        };
        Some((Ok::<_, actix_web::Error>(bytes), (rx, tick)))
    });
    Ok(HttpResponse::Ok()
        .insert_header((actix_web::http::header::CONTENT_TYPE, "text/event-stream"))
        .insert_header((actix_web::http::header::CACHE_CONTROL, "no-cache"))
        .streaming(super::sse::until_stop(body, &state.stopping)))
}

#[cfg(test)]
mod tests {
    use super::super::body::parse_json;
    use super::*;

    #[test]
    fn syntax_errors_are_bad_json_and_shape_errors_are_invalid_settings() {
        let e = parse_json::<Settings>(b"{oops", Problem::invalid_settings).unwrap_err();
        assert_eq!(e.reason, "bad_json");
        let e = parse_json::<Settings>(
            br#"{"kind": "jira", "licence_tier": "many", "shared_slots": 1}"#,
            Problem::invalid_settings,
        )
        .unwrap_err();
        assert_eq!(e.reason, "invalid_settings");
        assert!(
            e.detail.contains("licence_tier") || e.detail.contains("string"),
            "{}",
            e.detail
        );
    }
}
