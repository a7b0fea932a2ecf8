//! The conventional `process_*` series (as the Prometheus client libraries name them),
//! read from `/proc/self` at each scrape. Linux only; elsewhere the series are absent.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Unit;

#[derive(Debug)]
pub(super) struct ProcessCollector;

/// One reading of `/proc/self`.
#[derive(Debug, Default, PartialEq)]
pub(super) struct ProcessStats {
    pub cpu_seconds: f64,
    pub resident_bytes: u64,
    pub virtual_bytes: u64,
    pub open_fds: u64,
    pub max_fds: u64,
    pub start_time_seconds: f64,
}

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let Some(p) = ProcessStats::read() else {
            return Ok(());
        };
        let cpu = encoder.encode_descriptor(
            "process_cpu",
            "Total user and system CPU time spent.",
            Some(&Unit::Seconds),
            MetricType::Counter,
        )?;
        ConstCounter::new(p.cpu_seconds).encode(cpu)?;
        for (name, help, unit, value) in [
            (
                "process_resident_memory",
                "Resident memory size.",
                Some(Unit::Bytes),
                p.resident_bytes as f64,
            ),
            (
                "process_virtual_memory",
                "Virtual memory size.",
                Some(Unit::Bytes),
                p.virtual_bytes as f64,
            ),
            (
                "process_open_fds",
                "Open file descriptors.",
                None,
                p.open_fds as f64,
            ),
            (
                "process_max_fds",
                "Limit on open file descriptors (soft RLIMIT_NOFILE).",
                None,
                p.max_fds as f64,
            ),
            (
                "process_start_time",
                "Start time of the process since the Unix epoch.",
                Some(Unit::Seconds),
                p.start_time_seconds,
            ),
        ] {
            let metric = encoder.encode_descriptor(name, help, unit.as_ref(), MetricType::Gauge)?;
            ConstGauge::new(value).encode(metric)?;
        }
        Ok(())
    }
}

impl ProcessStats {
    pub(super) fn read() -> Option<ProcessStats> {
        let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
        let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
        let boot = std::fs::read_to_string("/proc/stat").ok()?;
        let open_fds = std::fs::read_dir("/proc/self/fd").ok()?.count() as u64;
        let max_fds = rustix::process::getrlimit(rustix::process::Resource::Nofile)
            .current
            .unwrap_or(u64::MAX);
        parse(
            &stat,
            &statm,
            &boot,
            rustix::param::clock_ticks_per_second() as f64,
            rustix::param::page_size() as u64,
        )
        .map(|p| ProcessStats {
            open_fds,
            max_fds,
            ..p
        })
    }
}

/// Parses `/proc/self/stat` (utime, stime, starttime in clock ticks), `/proc/self/statm`
/// (pages) and `btime` of `/proc/stat`. The command name in `stat` may hold spaces and
/// parentheses, so fields are counted from its last `)`.
fn parse(stat: &str, statm: &str, boot: &str, ticks: f64, page: u64) -> Option<ProcessStats> {
    // After ") ": field 3 (state) is index 0, so field N is index N - 3.
    let fields: Vec<&str> = stat[stat.rfind(')')? + 1..].split_whitespace().collect();
    let field = |n: usize| fields.get(n - 3)?.parse::<f64>().ok();
    let mut pages = statm.split_whitespace().map(|v| v.parse::<u64>().ok());
    let virtual_pages = pages.next()??;
    let resident_pages = pages.next()??;
    let btime: f64 = boot
        .lines()
        .find_map(|l| l.strip_prefix("btime "))?
        .trim()
        .parse()
        .ok()?;
    Some(ProcessStats {
        cpu_seconds: (field(14)? + field(15)?) / ticks,
        resident_bytes: resident_pages * page,
        virtual_bytes: virtual_pages * page,
        start_time_seconds: btime + field(22)? / ticks,
        ..ProcessStats::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_fields_past_a_command_name_with_spaces() {
        let stat = "4242 (cred (mint) x) S 1 4242 4242 0 -1 4194560 500 0 0 0 \
                    250 50 0 0 20 0 9 0 1000 123456 789 18446744073709551615";
        let p = parse(
            stat,
            "3000 200 50 1 0 100 0\n",
            "cpu 1 2\nbtime 1700000000\n",
            100.0,
            4096,
        )
        .unwrap();
        assert_eq!(p.cpu_seconds, 3.0);
        assert_eq!(p.resident_bytes, 200 * 4096);
        assert_eq!(p.virtual_bytes, 3000 * 4096);
        assert_eq!(p.start_time_seconds, 1_700_000_010.0);
    }

    #[test]
    fn reads_this_process() {
        let p = ProcessStats::read().expect("/proc/self readable");
        assert!(p.resident_bytes > 0 && p.open_fds > 0 && p.max_fds >= p.open_fds);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        assert!(p.start_time_seconds > now - 86_400.0 && p.start_time_seconds <= now + 1.0);
    }
}
