//! The languages of the pages (English and German) and every text they show.
//!
//! The language comes from `?lang=en|de`, else from `Accept-Language` (highest quality
//! first), else English.

use actix_web::http::header;
use actix_web::HttpRequest;

/// A language the pages speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    /// English (the default).
    En,
    /// German.
    De,
}

impl Lang {
    /// The BCP 47 tag, for `<html lang>`.
    pub fn tag(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::De => "de",
        }
    }

    /// The language a request asks for.
    pub fn of(req: &HttpRequest) -> Lang {
        let query = url::form_urlencoded::parse(req.query_string().as_bytes())
            .find(|(k, _)| k == "lang")
            .and_then(|(_, v)| Lang::parse(&v));
        if let Some(lang) = query {
            return lang;
        }
        req.headers()
            .get(header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok())
            .and_then(Lang::from_accept_language)
            .unwrap_or(Lang::En)
    }

    fn parse(tag: &str) -> Option<Lang> {
        let primary = tag.trim().split(['-', '_']).next()?.to_ascii_lowercase();
        match primary.as_str() {
            "en" => Some(Lang::En),
            "de" => Some(Lang::De),
            _ => None,
        }
    }

    /// The best supported language of an `Accept-Language` value.
    pub fn from_accept_language(value: &str) -> Option<Lang> {
        let mut best: Option<(f32, usize, Lang)> = None;
        for (i, part) in value.split(',').enumerate() {
            let mut pieces = part.split(';');
            let Some(lang) = pieces.next().and_then(Lang::parse) else {
                continue;
            };
            let q = pieces
                .find_map(|p| p.trim().strip_prefix("q="))
                .and_then(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            if q <= 0.0 {
                continue;
            }
            // Higher quality wins; on a tie, the earlier entry.
            if best.is_none_or(|(bq, bi, _)| q > bq || (q == bq && i < bi)) {
                best = Some((q, i, lang));
            }
        }
        best.map(|(_, _, l)| l)
    }

    /// Every text of the pages in this language.
    pub fn text(self) -> &'static Text {
        match self {
            Lang::En => &EN,
            Lang::De => &DE,
        }
    }
}

/// The texts of the pages. One field per text, so a missing translation does not compile.
pub struct Text {
    pub queue_title: &'static str,
    pub queue_intro: &'static str,
    /// The intro while rule 10 lets others pass (a licence may be free, just not for
    /// this user): it must not claim that all are in use.
    pub queue_intro_passed: &'static str,
    pub position: &'static str,
    pub estimated_wait: &'static str,
    pub next_check: &'static str,
    pub seconds: &'static str,
    pub minutes: &'static str,
    pub reconnect: &'static str,
    pub joining: &'static str,
    pub granted: &'static str,
    pub fixed: &'static str,
    pub locked: &'static str,
    pub none: &'static str,
    pub live: &'static str,
    pub polling: &'static str,
    pub noscript: &'static str,
    pub error: &'static str,
    pub continue_to: &'static str,
    pub skip: &'static str,
    /// Rule 10: why members behind may pass; followed by the group's name.
    pub waiting_group_cap: &'static str,
    /// Rule 10: the free licences are reserved for other groups.
    pub waiting_reserved: &'static str,
}

const EN: Text = Text {
    queue_title: "Waiting for a licence",
    queue_intro: "All shared licences are in use. You are in the queue and will be taken to the product as soon as a licence is free: keep this page open.",
    queue_intro_passed: "You are in the queue and will be taken to the product as soon as a licence can be yours: keep this page open.",
    position: "Your position",
    estimated_wait: "Estimated wait",
    next_check: "Next automatic check in",
    seconds: "s",
    minutes: "min",
    reconnect: "Reconnect now",
    joining: "Joining the queue…",
    granted: "A licence is yours. Taking you to the product…",
    fixed: "You have a fixed licence. Taking you to the product…",
    locked: "Your licence was taken back after inactivity. You can ask again at",
    none: "You are not in the queue. Press “Reconnect now” to join it.",
    live: "Live updates are on.",
    polling: "Live updates are unavailable; checking regularly instead.",
    noscript: "This page needs JavaScript to keep your place in the queue and take you to the product.",
    error: "The request failed:",
    continue_to: "Continue to the product",
    skip: "Skip to content",
    waiting_group_cap: "Your group holds all the licences it may have at once; members of other groups may go before you. Group:",
    waiting_reserved: "The free licences are reserved for other groups; you get the next one that is not.",
};

const DE: Text = Text {
    queue_title: "Warten auf eine Lizenz",
    queue_intro: "Alle gemeinsamen Lizenzen sind vergeben. Sie stehen in der Warteschlange und werden zum Produkt weitergeleitet, sobald eine Lizenz frei wird: Lassen Sie diese Seite geöffnet.",
    queue_intro_passed: "Sie stehen in der Warteschlange und werden zum Produkt weitergeleitet, sobald eine Lizenz für Sie frei wird: Lassen Sie diese Seite geöffnet.",
    position: "Ihre Position",
    estimated_wait: "Geschätzte Wartezeit",
    next_check: "Nächste automatische Prüfung in",
    seconds: "s",
    minutes: "Min.",
    reconnect: "Jetzt erneut verbinden",
    joining: "Sie werden in die Warteschlange eingereiht…",
    granted: "Sie haben eine Lizenz. Sie werden zum Produkt weitergeleitet…",
    fixed: "Sie haben eine feste Lizenz. Sie werden zum Produkt weitergeleitet…",
    locked: "Ihre Lizenz wurde wegen Inaktivität entzogen. Sie können sie wieder anfordern ab",
    none: "Sie stehen nicht in der Warteschlange. Wählen Sie „Jetzt erneut verbinden“, um sich einzureihen.",
    live: "Live-Aktualisierung ist aktiv.",
    polling: "Live-Aktualisierung nicht verfügbar; es wird regelmäßig geprüft.",
    noscript: "Diese Seite braucht JavaScript, um Ihren Platz in der Warteschlange zu halten und Sie zum Produkt weiterzuleiten.",
    error: "Die Anfrage ist fehlgeschlagen:",
    continue_to: "Weiter zum Produkt",
    skip: "Zum Inhalt springen",
    waiting_group_cap: "Ihre Gruppe hält bereits alle Lizenzen, die sie gleichzeitig haben darf; Mitglieder anderer Gruppen können vor Ihnen an die Reihe kommen. Gruppe:",
    waiting_reserved: "Die freien Lizenzen sind für andere Gruppen reserviert; Sie erhalten die nächste, die es nicht ist.",
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_language_picks_the_best_supported_language() {
        assert_eq!(
            Lang::from_accept_language("de-DE,de;q=0.9,en;q=0.8"),
            Some(Lang::De)
        );
        assert_eq!(
            Lang::from_accept_language("fr;q=1, en;q=0.5, de;q=0.7"),
            Some(Lang::De)
        );
        assert_eq!(Lang::from_accept_language("en-GB, de"), Some(Lang::En));
        assert_eq!(Lang::from_accept_language("fr, it"), None);
        assert_eq!(Lang::from_accept_language("de;q=0"), None);
    }

    #[test]
    fn query_parameter_wins_over_the_header() {
        let req = actix_web::test::TestRequest::with_uri("/queue/p?lang=de")
            .insert_header((header::ACCEPT_LANGUAGE, "en"))
            .to_http_request();
        assert_eq!(Lang::of(&req), Lang::De);
        let req = actix_web::test::TestRequest::with_uri("/queue/p")
            .insert_header((header::ACCEPT_LANGUAGE, "de-AT"))
            .to_http_request();
        assert_eq!(Lang::of(&req), Lang::De);
        let req = actix_web::test::TestRequest::with_uri("/queue/p").to_http_request();
        assert_eq!(Lang::of(&req), Lang::En);
    }
}
