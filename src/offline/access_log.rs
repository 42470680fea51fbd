//! Web access log lines: nginx/Apache "combined" (and "common") and Atlassian's Tomcat
//! access log (Jira's and Confluence's `access_log.<date>`), reduced to who made a
//! request and when.
//!
//! Formats:
//! - combined: `%h %l %u %t "%r" %>s %b "%{Referer}i" "%{User-agent}i"` (common: without
//!   the last two); the user is `%u`, the authenticated remote user.
//! - Atlassian: `%a %{jira.request.id}r %{jira.request.username}r %t "%m %U%q %H" %s %b
//!   %D "%{Referer}i" "%{User-Agent}i" "%{jira.request.assession.id}r"`; the user is the
//!   third field, the request id looks like `687x406810x28`.
//!
//! A user of `-` is an anonymous request: counted, not an error. Parsing takes any bytes
//! and never panics (a property test feeds it arbitrary bytes); a line it cannot read is
//! a [`LineError`], which callers count and report.

use slotpool_events::Timestamp;
use thiserror::Error;

/// Which access log format to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// nginx/Apache combined or common log format.
    Nginx,
    /// Atlassian (Jira, Confluence) Tomcat access log.
    Atlassian,
    /// Decide per line: Atlassian when the second field is a request id (`NxNxN`) or the
    /// line has Atlassian's eleven fields, else combined.
    Auto,
}

/// One request of a known user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hit {
    /// The authenticated user name.
    pub user: String,
    /// When the request was made.
    pub at: Timestamp,
}

/// What one line holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Line {
    /// A request of a known user.
    Hit(Hit),
    /// A request without a user (`-`): not activity of anyone.
    Anonymous,
    /// An empty line.
    Blank,
}

/// Why a line could not be read.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum LineError {
    /// A quoted or bracketed field is not closed.
    #[error("unterminated {0} field")]
    Unterminated(&'static str),
    /// Fewer fields than the format has.
    #[error("{found} fields, the format has at least {wanted}")]
    TooFewFields { found: usize, wanted: usize },
    /// The time field is not `[dd/Mon/yyyy:HH:MM:SS +zzzz]`.
    #[error("time {0:?} is not dd/Mon/yyyy:HH:MM:SS +zzzz")]
    BadTime(String),
    /// The status field is not a three-digit number.
    #[error("status {0:?} is not an HTTP status")]
    BadStatus(String),
}

/// A field of a line: a bare word, a `[bracketed]` or a `"quoted"` one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field<'a> {
    Bare(&'a str),
    Bracketed(&'a str),
    Quoted(&'a str),
}

impl<'a> Field<'a> {
    fn text(self) -> &'a str {
        match self {
            Field::Bare(s) | Field::Bracketed(s) | Field::Quoted(s) => s,
        }
    }
}

/// Splits a line into fields. Quoted fields may hold `\"`; their text is returned raw.
fn fields(line: &str) -> Result<Vec<Field<'_>>, LineError> {
    let mut out = Vec::new();
    let mut rest = line.trim_start();
    while !rest.is_empty() {
        if let Some(body) = rest.strip_prefix('"') {
            let mut end = None;
            let mut escaped = false;
            for (i, c) in body.char_indices() {
                match c {
                    _ if escaped => escaped = false,
                    '\\' => escaped = true,
                    '"' => {
                        end = Some(i);
                        break;
                    }
                    _ => {}
                }
            }
            let end = end.ok_or(LineError::Unterminated("quoted"))?;
            out.push(Field::Quoted(&body[..end]));
            rest = &body[end + 1..];
        } else if let Some(body) = rest.strip_prefix('[') {
            let end = body.find(']').ok_or(LineError::Unterminated("bracketed"))?;
            out.push(Field::Bracketed(&body[..end]));
            rest = &body[end + 1..];
        } else {
            let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
            out.push(Field::Bare(&rest[..end]));
            rest = &rest[end..];
        }
        rest = rest.trim_start();
    }
    Ok(out)
}

/// Parses one line (any bytes; invalid UTF-8 is replaced, never a panic).
pub fn parse_line(bytes: &[u8], format: LogFormat) -> Result<Line, LineError> {
    let text = String::from_utf8_lossy(bytes);
    let line = text.trim_end_matches(['\r', '\n']);
    if line.trim().is_empty() {
        return Ok(Line::Blank);
    }
    let f = fields(line)?;
    let atlassian = match format {
        LogFormat::Atlassian => true,
        LogFormat::Nginx => false,
        LogFormat::Auto => f.get(1).is_some_and(|x| is_request_id(x.text())) || f.len() == 11,
    };
    // Both formats: address, id, user, [time], "request", status ...
    let wanted = if atlassian { 8 } else { 6 };
    if f.len() < wanted {
        return Err(LineError::TooFewFields {
            found: f.len(),
            wanted,
        });
    }
    let time = match f[3] {
        Field::Bracketed(t) => t,
        other => return Err(LineError::BadTime(other.text().to_string())),
    };
    let at = parse_time(time).ok_or_else(|| LineError::BadTime(time.to_string()))?;
    let status = f[5].text();
    if !(status.len() == 3 && status.bytes().all(|b| b.is_ascii_digit())) {
        return Err(LineError::BadStatus(status.to_string()));
    }
    let user = f[2].text();
    if user == "-" || user.is_empty() {
        return Ok(Line::Anonymous);
    }
    Ok(Line::Hit(Hit {
        user: user.to_string(),
        at,
    }))
}

/// Whether `s` looks like an Atlassian request id: `digits x digits x digits`.
fn is_request_id(s: &str) -> bool {
    let parts: Vec<&str> = s.split('x').collect();
    parts.len() == 3
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}

/// Parses the common log time `17/Apr/2015:11:27:43 -0700`.
fn parse_time(s: &str) -> Option<Timestamp> {
    chrono::DateTime::parse_from_str(s, "%d/%b/%Y:%H:%M:%S %z")
        .ok()
        .map(|t| Timestamp::from_millis(t.timestamp_millis()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: i64 = 1_429_295_263_000; // 17/Apr/2015:11:27:43 -0700

    #[test]
    fn reads_combined() {
        let l = br#"192.0.2.7 - alice [17/Apr/2015:11:27:43 -0700] "GET /browse/X-1 HTTP/1.1" 200 512 "https://j/" "Mozilla/5.0 (X11) \"quoted\"""#;
        assert_eq!(
            parse_line(l, LogFormat::Nginx),
            Ok(Line::Hit(Hit {
                user: "alice".into(),
                at: Timestamp::from_millis(T)
            }))
        );
        assert_eq!(
            parse_line(l, LogFormat::Auto),
            parse_line(l, LogFormat::Nginx)
        );
        let common = br#"192.0.2.7 - - [17/Apr/2015:11:27:43 -0700] "GET / HTTP/1.1" 302 0"#;
        assert_eq!(parse_line(common, LogFormat::Auto), Ok(Line::Anonymous));
    }

    #[test]
    fn reads_atlassian() {
        let l = br#"192.3.2.1 687x406810x28 userX [17/Apr/2015:11:27:43 -0700] "GET /rest/zephyr/latest/audit?x=1 HTTP/1.1" 200 47 91 "https://jira.company.com/issues/?filter=39318" "Mozilla/5.0 (Windows NT 6.1; WOW64)" "2c0qst""#;
        let hit = Ok(Line::Hit(Hit {
            user: "userX".into(),
            at: Timestamp::from_millis(T),
        }));
        assert_eq!(parse_line(l, LogFormat::Atlassian), hit);
        assert_eq!(parse_line(l, LogFormat::Auto), hit);
        let anon = br#"10.0.0.1 1x2x3 - [17/Apr/2015:11:27:43 -0700] "GET /login.jsp HTTP/1.1" 200 10 3 "" "curl" "-""#;
        assert_eq!(parse_line(anon, LogFormat::Auto), Ok(Line::Anonymous));
    }

    #[test]
    fn malformed_lines_are_errors_not_panics() {
        let cases: [&[u8]; 7] = [
            b"garbage",
            br#"1.2.3.4 - bob [17/Apr/2015:11:27:43 -0700 "GET / HTTP/1.1" 200 1"#,
            br#"1.2.3.4 - bob [17/Apr/2015:11:27:43 -0700] "GET / HTTP/1.1 200 1"#,
            br#"1.2.3.4 - bob [yesterday] "GET / HTTP/1.1" 200 1"#,
            br#"1.2.3.4 - bob [17/Apr/2015:11:27:43 -0700] "GET / HTTP/1.1" ok 1"#,
            b"1.2.3.4 - bob 17/Apr/2015 x y z",
            b"\xff\xfe\x00 [\xc3",
        ];
        for c in cases {
            assert!(parse_line(c, LogFormat::Auto).is_err(), "{c:?}");
        }
        assert_eq!(parse_line(b"  \r\n", LogFormat::Auto), Ok(Line::Blank));
    }

    proptest::proptest! {
        // A fixed budget in `make test`: 2 000 arbitrary lines, and as many built from
        // fragments of real lines (which reach deeper into the parser).
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2_000))]

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300)) {
            for format in [LogFormat::Nginx, LogFormat::Atlassian, LogFormat::Auto] {
                let _ = parse_line(&bytes, format);
            }
        }

        #[test]
        fn mangled_real_lines_never_panic(
            parts in proptest::collection::vec(
                proptest::prop_oneof![
                    proptest::prelude::Just("192.0.2.7".to_string()),
                    proptest::prelude::Just("687x406810x28".to_string()),
                    proptest::prelude::Just("-".to_string()),
                    proptest::prelude::Just("[17/Apr/2015:11:27:43 -0700]".to_string()),
                    proptest::prelude::Just("[17/Apr/2015:11:27:43".to_string()),
                    proptest::prelude::Just("\"GET / HTTP/1.1\"".to_string()),
                    proptest::prelude::Just("\"\\\"".to_string()),
                    proptest::prelude::Just("200".to_string()),
                    "\\PC{0,12}",
                ],
                0..14,
            )
        ) {
            let line = parts.join(" ");
            for format in [LogFormat::Nginx, LogFormat::Atlassian, LogFormat::Auto] {
                let _ = parse_line(line.as_bytes(), format);
            }
        }
    }
}
