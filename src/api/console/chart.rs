//! The expiry chart: one stacked bar per UTC day (certificates below, tokens above), as
//! inline SVG so the page needs no script and no asset from anywhere else.

use maud::{html, Markup};

use super::format::{date, day_label};
use super::snapshot::Day;

const WIDTH: u64 = 560;
const HEIGHT: u64 = 200;
/// Room under the bars for the day labels, and above them for the counts.
const LABELS: u64 = 24;
const TOP: u64 = 20;
const SLOT: u64 = 80;
const BAR: u64 = 48;

/// Pixel height of `count` out of `max` in the plot area.
fn scaled(count: u64, max: u64) -> u64 {
    let plot = HEIGHT - LABELS - TOP;
    (count * plot).div_ceil(max.max(1))
}

pub fn expiries(days: &[Day]) -> Markup {
    let max = days.iter().map(Day::total).max().unwrap_or(0);
    let base = HEIGHT - LABELS;
    html! {
        svg #expiry-chart xmlns="http://www.w3.org/2000/svg" role="img"
            viewBox=(format!("0 0 {WIDTH} {HEIGHT}")) width=(WIDTH) height=(HEIGHT)
            aria-labelledby="expiry-chart-title" {
            title #expiry-chart-title { "Certificates and tokens expiring per day, next " (days.len()) " days" }
            line .axis x1="0" x2=(WIDTH) y1=(base) y2=(base) {}
            @for (i, day) in days.iter().enumerate() {
                @let x = i as u64 * SLOT + (SLOT - BAR) / 2;
                @let certs = scaled(day.certificates, max);
                @let tokens = scaled(day.tokens, max);
                g .day data-day=(date(day.start)) data-certificates=(day.certificates) data-tokens=(day.tokens) {
                    title { (date(day.start)) ": " (day.certificates) " certificates, " (day.tokens) " tokens" }
                    @if certs > 0 {
                        rect .bar-cert x=(x) y=(base - certs) width=(BAR) height=(certs) {}
                    }
                    @if tokens > 0 {
                        rect .bar-token x=(x) y=(base - certs - tokens) width=(BAR) height=(tokens) {}
                    }
                    text .count x=(x + BAR / 2) y=(base - certs - tokens - 4) text-anchor="middle" { (day.total()) }
                    text .label x=(x + BAR / 2) y=(HEIGHT - 6) text-anchor="middle" { (day_label(day.start)) }
                }
            }
        }
        p .legend {
            span .key-cert {} " certificates "
            span .key-token {} " tokens"
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_scale_to_the_busiest_day_and_empty_days_draw_no_bar() {
        let day = |start, certificates, tokens| Day {
            start,
            certificates,
            tokens,
        };
        let svg = expiries(&[day(0, 2, 2), day(86_400, 0, 0), day(172_800, 1, 0)]).into_string();
        assert_eq!(svg.matches("<g class=\"day\"").count(), 3);
        // The busiest day fills the plot: certificates and tokens half each.
        assert!(svg.contains("height=\"78\""), "{svg}");
        assert_eq!(svg.matches("class=\"bar-cert\"").count(), 2);
        assert_eq!(svg.matches("class=\"bar-token\"").count(), 1);
        assert!(svg.contains("data-day=\"1970-01-02\" data-certificates=\"0\""));
    }
}
