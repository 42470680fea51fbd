//! Charts as server-rendered SVG: no script, no library, nothing fetched. Values are
//! bucketed to the chart's pixel columns (the maximum of each bucket, so no peak is lost).

use maud::{html, Markup};

/// Width and height of the drawing, in SVG units.
const W: f64 = 960.0;
const H: f64 = 240.0;
const LEFT: f64 = 44.0;
const BOTTOM: f64 = 24.0;
const TOP: f64 = 10.0;
const RIGHT: f64 = 10.0;

/// One line of a chart.
pub struct Line<'a> {
    /// The legend's text.
    pub label: &'a str,
    /// One value per step.
    pub values: &'a [u32],
}

/// A round upper bound for the y axis: four steps of 1, 2 or 5 times a power of ten, so
/// every tick is a whole number.
fn nice_max(max: u32) -> u32 {
    let quarter = max.max(1).div_ceil(4);
    let mag = 10u32.pow(quarter.ilog10());
    let step = [1, 2, 5, 10]
        .iter()
        .map(|m| m * mag)
        .find(|v| *v >= quarter)
        .unwrap_or(10 * mag);
    step * 4
}

fn x_label(ms: i64, with_day: bool) -> String {
    let t = chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default();
    if with_day {
        t.format("%a %d.%m").to_string()
    } else {
        t.format("%H:%M").to_string()
    }
}

fn y_of(v: f64, top: f64) -> f64 {
    TOP + (H - TOP - BOTTOM) * (1.0 - v / top)
}

fn axes(id: &str, top: u32, start_ms: i64, step_ms: i64, n: usize, with_day: bool) -> Markup {
    let ticks = 4;
    let plot_w = W - LEFT - RIGHT;
    html! {
        @for i in 0..=ticks {
            @let v = top as f64 * i as f64 / ticks as f64;
            @let y = y_of(v, top as f64);
            line class="grid" x1=(LEFT) x2=(W - RIGHT) y1=(y) y2=(y) {}
            text x=(LEFT - 6.0) y=(y + 4.0) text-anchor="end" { (format!("{v:.0}")) }
        }
        line class="axis" x1=(LEFT) x2=(W - RIGHT) y1=(H - BOTTOM) y2=(H - BOTTOM) {}
        @for i in 0..=6 {
            @let x = LEFT + plot_w * i as f64 / 6.0;
            @let ms = start_ms + (n as f64 * step_ms as f64 * i as f64 / 6.0) as i64;
            @let anchor = match i { 0 => "start", 6 => "end", _ => "middle" };
            text x=(x) y=(H - 6.0) text-anchor=(anchor) { (x_label(ms, with_day)) }
        }
        desc id={ (id) "-desc" } { "Times in UTC." }
    }
}

/// A line chart of per-step series starting at `start_ms`.
pub fn line_chart(id: &str, title: &str, start_ms: i64, step_ms: i64, lines: &[Line]) -> Markup {
    let n = lines.iter().map(|l| l.values.len()).max().unwrap_or(0);
    let max = lines
        .iter()
        .flat_map(|l| l.values.iter().copied())
        .max()
        .unwrap_or(0);
    let top = nice_max(max);
    let plot_w = W - LEFT - RIGHT;
    let columns = (plot_w as usize).min(n.max(1));
    let with_day = n as i64 * step_ms > 24 * 3600 * 1000;
    let points = |values: &[u32]| -> String {
        let mut out = String::new();
        for c in 0..columns {
            let lo = c * n / columns;
            let hi = ((c + 1) * n / columns).max(lo + 1).min(values.len());
            let v = values
                .get(lo..hi)
                .and_then(|s| s.iter().max())
                .copied()
                .unwrap_or(0);
            let x = LEFT + plot_w * (c as f64 + 0.5) / columns as f64;
            out.push_str(&format!("{x:.1},{:.1} ", y_of(v as f64, top as f64)));
        }
        out
    };
    let plot = html! {
        (axes(id, top, start_ms, step_ms, n, with_day))
        @for (i, l) in lines.iter().enumerate() {
            polyline class={ "s" (i % 7) } points=(points(l.values)) {}
        }
    };
    let legend = html! {
        @for (i, l) in lines.iter().enumerate() {
            span { i class={ "l" (i % 7) } {} (l.label) }
        }
    };
    figure(id, title, plot, legend)
}

/// The frame every chart shares: the SVG, titled for screen readers, holding `plot`, and
/// below it the caption with the title and `legend`.
fn figure(id: &str, title: &str, plot: Markup, legend: Markup) -> Markup {
    html! {
        figure {
            svg class="chart" viewBox={ "0 0 " (W) " " (H) } role="img"
                aria-labelledby={ (id) "-title " (id) "-desc" } {
                title id={ (id) "-title" } { (title) }
                (plot)
            }
            figcaption class="legend" {
                strong { (title) }
                (legend)
            }
        }
    }
}

/// A bar chart of one value per day, with a line per `lines` and a dashed mark.
pub fn day_bars(
    peak_label: &str,
    id: &str,
    title: &str,
    start_ms: i64,
    bars: &[u32],
    lines: &[Line],
    mark: Option<(&str, u32)>,
) -> Markup {
    let n = bars.len().max(1);
    let max = bars
        .iter()
        .copied()
        .chain(lines.iter().flat_map(|l| l.values.iter().copied()))
        .chain(mark.map(|m| m.1))
        .max()
        .unwrap_or(0);
    let top = nice_max(max);
    let plot_w = W - LEFT - RIGHT;
    let slot = plot_w / n as f64;
    let day = 24 * 3600 * 1000;
    let plot = html! {
        (axes(id, top, start_ms, day, n, true))
        @for (i, v) in bars.iter().enumerate() {
            @let y = y_of(*v as f64, top as f64);
            rect class="bar" x=(format!("{:.1}", LEFT + slot * i as f64 + slot * 0.15))
                y=(format!("{y:.1}")) width=(format!("{:.1}", slot * 0.7))
                height=(format!("{:.1}", H - BOTTOM - y)) {
                title { (x_label(start_ms + i as i64 * day, true)) ": " (v) }
            }
        }
        @for (i, l) in lines.iter().enumerate() {
            @let pts = l.values.iter().enumerate().map(|(j, v)| {
                format!("{:.1},{:.1} ", LEFT + slot * (j as f64 + 0.5), y_of(*v as f64, top as f64))
            }).collect::<String>();
            polyline class={ "s" ((i + 1) % 7) } points=(pts) {}
        }
        @if let Some((_, v)) = mark {
            @let y = y_of(v as f64, top as f64);
            line class="mark" x1=(LEFT) x2=(W - RIGHT) y1=(y) y2=(y) {}
        }
    };
    let legend = html! {
        span { i class="l0" {} (peak_label) }
        @for (i, l) in lines.iter().enumerate() {
            span { i class={ "l" ((i + 1) % 7) } {} (l.label) }
        }
        @if let Some((label, v)) = mark {
            span { i class="l3" {} (label) ": " (v) }
        }
    };
    figure(id, title, plot, legend)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axis_tops_are_round() {
        assert_eq!(nice_max(0), 4);
        assert_eq!(nice_max(5), 8);
        assert_eq!(nice_max(7), 8);
        assert_eq!(nice_max(11), 20);
        assert_eq!(nice_max(420), 800);
        assert_eq!(nice_max(400), 400);
    }

    #[test]
    fn a_chart_is_svg_with_escaped_labels() {
        let v = [1, 2, 3];
        let svg = line_chart(
            "c",
            "<t>",
            0,
            60_000,
            &[Line {
                label: "a&b",
                values: &v,
            }],
        )
        .into_string();
        assert!(svg.contains("<svg"), "{svg}");
        assert!(
            svg.contains("&lt;t&gt;") && svg.contains("a&amp;b"),
            "{svg}"
        );
        assert!(svg.contains("<polyline"), "{svg}");
    }
}
