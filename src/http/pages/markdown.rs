//! The administrator's queue page message: Markdown rendered to HTML, then sanitised with
//! `ammonia` (a whitelist of tags and attributes; no script, no event handlers, no
//! `javascript:` links, no inline styles), so that what an administrator typed can never
//! run in a user's browser.

use pulldown_cmark::{html, Options, Parser};

/// Markdown to safe HTML.
pub fn render(markdown: &str) -> String {
    let parser = Parser::new_ext(
        markdown,
        Options::ENABLE_STRIKETHROUGH | Options::ENABLE_TABLES,
    );
    let mut raw = String::with_capacity(markdown.len() * 2);
    html::push_html(&mut raw, parser);
    ammonia::Builder::default()
        .link_rel(Some("noopener noreferrer"))
        .url_schemes(["http", "https", "mailto"].into_iter().collect())
        .clean(&raw)
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_is_rendered() {
        let html = render("**Busy** today, see [status](https://status.example/)");
        assert!(html.contains("<strong>Busy</strong>"), "{html}");
        assert!(html.contains("href=\"https://status.example/\""), "{html}");
    }

    #[test]
    fn script_and_handlers_are_removed() {
        let html = render("<script>alert(1)</script><img src=x onerror=alert(2)>\n\nSee [x](javascript:alert(3)) <b style=\"color:red\">b</b>");
        assert!(
            html.contains("<a rel=\"noopener noreferrer\">x</a>"),
            "{html}"
        );
        assert!(!html.contains("<script"), "{html}");
        assert!(!html.contains("onerror"), "{html}");
        assert!(!html.contains("javascript:"), "{html}");
        assert!(!html.contains("style="), "{html}");
    }
}
