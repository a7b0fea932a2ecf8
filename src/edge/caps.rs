//! Connection caps: one count for the whole listener and one per peer, taken when a TCP
//! connection is accepted and given back when it closes. A connection that finds either
//! count full is refused on the spot; refusals are counted, and reported at most once per
//! [`REPORT_EVERY`], never once per connection.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Least time between two warnings about refused connections or failing accepts.
pub const REPORT_EVERY: Duration = Duration::from_secs(10);

/// Who a per-peer cap counts: an IPv4 address, or an IPv6 /64 (one host can hold a whole
/// /64, so counting single IPv6 addresses would cap nothing). IPv4-mapped IPv6 addresses
/// count as their IPv4 address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Peer {
    V4(Ipv4Addr),
    V6Net([u8; 8]),
}

impl Peer {
    pub fn of(ip: IpAddr) -> Peer {
        match ip.to_canonical() {
            IpAddr::V4(a) => Peer::V4(a),
            IpAddr::V6(a) => {
                let mut net = [0u8; 8];
                net.copy_from_slice(&a.octets()[..8]);
                Peer::V6Net(net)
            }
        }
    }
}

/// Which cap refused a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    Global,
    PerPeer,
}

#[derive(Default)]
struct Open {
    total: usize,
    by_peer: HashMap<Peer, usize>,
}

/// At most one `true` per [`REPORT_EVERY`]: the gate for rate-limited warnings.
#[derive(Default)]
pub struct Throttle(Mutex<Option<Instant>>);

impl Throttle {
    pub fn ready(&self) -> bool {
        let mut last = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        if last.is_some_and(|t| now.duration_since(t) < REPORT_EVERY) {
            return false;
        }
        *last = Some(now);
        true
    }
}

pub struct Caps {
    max_total: usize,
    max_per_peer: usize,
    open: Mutex<Open>,
    refused_global: AtomicU64,
    refused_per_peer: AtomicU64,
    /// Refusals already included in a warning.
    reported: AtomicU64,
    throttle: Throttle,
}

/// One admitted connection's place under both caps; dropping it gives the place back.
pub struct Slot {
    caps: Arc<Caps>,
    peer: Peer,
}

impl Caps {
    pub fn new(max_total: usize, max_per_peer: usize) -> Arc<Caps> {
        Arc::new(Caps {
            max_total,
            max_per_peer,
            open: Mutex::default(),
            refused_global: AtomicU64::new(0),
            refused_per_peer: AtomicU64::new(0),
            reported: AtomicU64::new(0),
            throttle: Throttle::default(),
        })
    }

    /// A place for a connection from `ip`, or the cap that is full.
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<Slot, Refused> {
        let peer = Peer::of(ip);
        let verdict = {
            let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
            let mine = open.by_peer.get(&peer).copied().unwrap_or(0);
            if open.total >= self.max_total {
                Err(Refused::Global)
            } else if mine >= self.max_per_peer {
                Err(Refused::PerPeer)
            } else {
                open.total += 1;
                open.by_peer.insert(peer, mine + 1);
                Ok(())
            }
        };
        match verdict {
            Ok(()) => Ok(Slot {
                caps: self.clone(),
                peer,
            }),
            Err(why) => {
                self.note_refusal(why, ip);
                Err(why)
            }
        }
    }

    fn note_refusal(&self, why: Refused, ip: IpAddr) {
        match why {
            Refused::Global => &self.refused_global,
            Refused::PerPeer => &self.refused_per_peer,
        }
        .fetch_add(1, Ordering::Relaxed);
        if !self.throttle.ready() {
            return;
        }
        let (global, per_peer) = self.refused();
        let total = global + per_peer;
        let since = total - self.reported.swap(total, Ordering::Relaxed);
        tracing::warn!(
            refused = since,
            refused_global_total = global,
            refused_per_peer_total = per_peer,
            open = self.open(),
            max_connections = self.max_total,
            max_connections_per_ip = self.max_per_peer,
            last_peer = %ip,
            "connections refused at the connection caps since the last report"
        );
    }

    /// Connections holding a place now.
    pub fn open(&self) -> usize {
        self.open.lock().unwrap_or_else(|p| p.into_inner()).total
    }

    /// Connections refused so far: (by the global cap, by a per-peer cap).
    pub fn refused(&self) -> (u64, u64) {
        (
            self.refused_global.load(Ordering::Relaxed),
            self.refused_per_peer.load(Ordering::Relaxed),
        )
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.caps.open.lock().unwrap_or_else(|p| p.into_inner());
        open.total = open.total.saturating_sub(1);
        if let Some(n) = open.by_peer.get_mut(&self.peer) {
            *n -= 1;
            if *n == 0 {
                open.by_peer.remove(&self.peer);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn per_peer_and_global_caps_refuse_and_release() {
        let caps = Caps::new(5, 2);
        let a1 = caps.admit(ip("10.0.0.1")).unwrap();
        let _a2 = caps.admit(ip("::ffff:10.0.0.1")).unwrap();
        assert_eq!(caps.admit(ip("10.0.0.1")).err(), Some(Refused::PerPeer));
        let _b1 = caps.admit(ip("2001:db8::1")).unwrap();
        let _b2 = caps.admit(ip("2001:db8::ffff:2")).unwrap();
        assert_eq!(
            caps.admit(ip("2001:db8::3")).err(),
            Some(Refused::PerPeer),
            "one /64 is one peer"
        );
        let _c1 = caps.admit(ip("10.0.0.3")).unwrap();
        assert_eq!(caps.open(), 5);
        assert_eq!(caps.admit(ip("10.0.0.4")).err(), Some(Refused::Global));
        drop(a1);
        assert_eq!(caps.open(), 4);
        let _a3 = caps.admit(ip("10.0.0.1")).unwrap();
        assert_eq!(caps.refused(), (1, 2));
    }

    #[test]
    fn throttle_opens_once_per_period() {
        let t = Throttle::default();
        assert!(t.ready());
        assert!(!t.ready());
    }
}
