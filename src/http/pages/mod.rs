//! The pages users and proxies meet: the queue page, the embeddable client and the static
//! files they load, plus what every page shares (languages, layout, security headers,
//! sanitised Markdown, `return_to` validation).

pub mod assets;
pub mod headers;
pub mod lang;
pub mod layout;
pub mod markdown;
pub mod queue;
pub mod return_to;
