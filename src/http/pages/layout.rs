//! The HTML shell every page shares. `maud` escapes every value put into markup, so text
//! an administrator or user typed can only ever appear as text.

use super::lang::Lang;
use maud::{html, Markup, DOCTYPE};

/// A whole page: `title`, the page's `body`, and the scripts it loads (files under
/// `static/`, given relative to the page by `static_prefix`). No inline script or style.
pub fn page(
    lang: Lang,
    title: &str,
    static_prefix: &str,
    scripts: &[&str],
    body: Markup,
) -> Markup {
    html! {
        (DOCTYPE)
        html lang=(lang.tag()) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="referrer" content="no-referrer";
                title { (title) }
                link rel="stylesheet" href={ (static_prefix) "static/pages.css" };
                @for s in scripts {
                    script src={ (static_prefix) "static/" (s) } defer {}
                }
            }
            body {
                a class="skip" href="#main" { (lang.text().skip) }
                (body)
            }
        }
    }
}
