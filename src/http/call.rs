//! The preamble most handlers share, in one place: who is calling (checked by
//! [`Admin`] or [`CallingUser`], before anything else) and what the path names (the
//! product, found; its user, checked). Each extractor refuses in the order the handlers
//! always did: the caller first, then the names of the path, then an unknown product.

use super::auth::{check_user_name, sync_extractor, Admin, CallingUser};
use super::AppState;
use crate::problem::Problem;
use actix::Addr;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::de::DeserializeOwned;
use slotpool_actors::ProductActor;
use slotpool_events::Command;

/// The shared state as handlers hold it; a missing one is a wiring bug, a problem.
fn data(req: &HttpRequest) -> Result<web::Data<AppState>, Problem> {
    req.app_data::<web::Data<AppState>>()
        .cloned()
        .ok_or_else(|| Problem::internal("no app state"))
}

/// The path's segments, decoded as `web::Path` decodes them; a mismatch is a wiring bug.
fn segments<T: DeserializeOwned>(req: &HttpRequest) -> Result<T, Problem> {
    req.match_info().load().map_err(Problem::internal)
}

/// The existing product a call is on, found from the path's `{product}`.
pub struct Product {
    /// The shared state.
    pub state: web::Data<AppState>,
    /// The product's id, from the path.
    pub id: String,
    /// The product's actor.
    pub addr: Addr<ProductActor>,
}

impl Product {
    /// Product `id`, found: 400 for an id that cannot name one, 404 for an unknown one.
    fn find(state: web::Data<AppState>, id: String) -> Result<Product, Problem> {
        let addr = state.product(&id)?;
        Ok(Product { state, id, addr })
    }
}

/// A call for one user on an existing product: the caller of the user API, or the
/// `{user}` of an admin call.
pub struct ProductUser {
    /// The product.
    pub product: Product,
    /// The user the call is for.
    pub user: String,
}

impl ProductUser {
    /// Has the product decide the command `command` names for the user; 204 once its
    /// events are durable (an admin's removal or revocation, a user's release alike).
    pub async fn execute(self, command: fn(String) -> Command) -> Result<HttpResponse, Problem> {
        let Product { state, addr, .. } = self.product;
        super::execute(&state, &addr, command(self.user)).await?;
        Ok(HttpResponse::NoContent().finish())
    }
}

/// An admin call naming one thing in its path (a `{product}` to create, a `{user}`, a
/// request `{id}`): the admin checked, the shared state and the segment.
pub struct AdminPath(pub web::Data<AppState>, pub String);

fn admin_path(req: &HttpRequest) -> Result<AdminPath, Problem> {
    let Admin = super::auth::check_admin(req)?;
    Ok(AdminPath(data(req)?, segments(req)?))
}
sync_extractor!(AdminPath, admin_path);

/// An admin call on an existing product, `/admin/v1/products/{product}/...`.
pub struct AdminProduct(pub Product);

fn admin_product(req: &HttpRequest) -> Result<AdminProduct, Problem> {
    let AdminPath(state, id) = admin_path(req)?;
    Ok(AdminProduct(Product::find(state, id)?))
}
sync_extractor!(AdminProduct, admin_product);

/// An admin call on a user of an existing product, `/admin/v1/products/{product}/.../{user}`:
/// the user name is checked before the product is looked up.
pub struct AdminProductUser(pub ProductUser);

fn admin_product_user(req: &HttpRequest) -> Result<AdminProductUser, Problem> {
    let Admin = super::auth::check_admin(req)?;
    let state = data(req)?;
    let (product, user): (String, String) = segments(req)?;
    check_user_name(&user)?;
    let product = Product::find(state, product)?;
    Ok(AdminProductUser(ProductUser { product, user }))
}
sync_extractor!(AdminProductUser, admin_product_user);

/// A user's call on an existing product, `/api/v1/products/{product}/...` and the gate:
/// the calling user checked, then the product found.
pub struct UserProduct(pub ProductUser);

fn user_product(req: &HttpRequest) -> Result<UserProduct, Problem> {
    let CallingUser(user) = super::auth::calling_user(req)?;
    let product = Product::find(data(req)?, segments(req)?)?;
    Ok(UserProduct(ProductUser { product, user }))
}
sync_extractor!(UserProduct, user_product);
