//! The static files of the pages, embedded in the binary (`assets/`): no CDN, nothing
//! fetched from elsewhere, works offline. `GET /static/{name}`.

use crate::problem::Problem;
use actix_web::{web, HttpResponse};

/// One embedded file.
pub struct Asset {
    /// The name under `/static/`.
    pub name: &'static str,
    /// Its media type.
    pub content_type: &'static str,
    /// Its bytes.
    pub body: &'static str,
}

impl Asset {
    /// An embedded file named `name`, of media type `content_type`.
    const fn new(name: &'static str, content_type: &'static str, body: &'static str) -> Asset {
        Asset {
            name,
            content_type,
            body,
        }
    }
}

/// The media type of a script.
const JS: &str = "text/javascript; charset=utf-8";
/// The media type of a style sheet.
const CSS: &str = "text/css; charset=utf-8";

/// Every embedded file.
pub const ASSETS: &[Asset] = &[
    Asset::new(
        "slotpool.js",
        JS,
        include_str!("../../../assets/slotpool.js"),
    ),
    Asset::new(
        "widget.css",
        CSS,
        include_str!("../../../assets/widget.css"),
    ),
    Asset::new("queue.js", JS, include_str!("../../../assets/queue.js")),
    Asset::new("pages.css", CSS, include_str!("../../../assets/pages.css")),
    Asset::new(
        "dashboard.js",
        JS,
        include_str!("../../../assets/dashboard.js"),
    ),
];

/// `GET /static/{name}`.
pub async fn asset(name: web::Path<String>) -> Result<HttpResponse, Problem> {
    let found = ASSETS
        .iter()
        .find(|a| a.name == name.as_str())
        .ok_or_else(|| Problem::not_found(format!("no static file {:?}", name.as_str())))?;
    Ok(HttpResponse::Ok()
        .content_type(found.content_type)
        // Short: a new binary may bring new files under the same names.
        .insert_header(("Cache-Control", "public, max-age=300"))
        .body(found.body))
}
