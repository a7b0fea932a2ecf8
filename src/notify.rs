//! The systemd notification protocol (`sd_notify(3)`), so a `Type=notify` unit is started
//! only once the HTTPS listener is up and the start-up checkpoint is signed, and systemd
//! knows when a stop is in progress.
//!
//! A datagram to the socket named by `NOTIFY_SOCKET` (a path, or `@name` for the Linux
//! abstract namespace). Without that variable (not under systemd) every call is a no-op.
//! Failures are logged and never stop the appliance: readiness is advisory to the manager.

use std::os::unix::net::UnixDatagram;

/// Sends `state` (newline-separated `KEY=value` assignments) to the service manager.
/// Returns false when there is no manager to tell or the datagram could not be sent.
pub fn notify(state: &str) -> bool {
    match std::env::var_os("NOTIFY_SOCKET") {
        Some(path) => notify_to(&path, state),
        None => false,
    }
}

/// As [`notify`], to the socket `path` (the value of `NOTIFY_SOCKET`).
pub fn notify_to(path: &std::ffi::OsStr, state: &str) -> bool {
    let sent = (|| -> std::io::Result<()> {
        let socket = UnixDatagram::unbound()?;
        let bytes = path.as_encoded_bytes();
        if let Some(name) = bytes.strip_prefix(b"@") {
            use std::os::linux::net::SocketAddrExt;
            let addr = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
            socket.send_to_addr(state.as_bytes(), &addr)?;
        } else {
            socket.send_to(state.as_bytes(), path)?;
        }
        Ok(())
    })();
    match sent {
        Ok(()) => true,
        Err(e) => {
            tracing::warn!(error = %e, "could not notify the service manager");
            false
        }
    }
}

/// Serving: the listener accepts and a checkpoint covers the ledger.
pub fn ready(addr: std::net::SocketAddr) {
    notify(&format!("READY=1\nSTATUS=serving on {addr}"));
}

/// A graceful stop has begun (SIGTERM): systemd waits for the drain instead of guessing.
pub fn stopping() {
    notify("STOPPING=1\nSTATUS=draining");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sends_to_a_path_or_abstract_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify.sock");
        let listener = UnixDatagram::bind(&path).unwrap();
        assert!(notify_to(path.as_os_str(), "READY=1"));
        let mut buf = [0u8; 64];
        let n = listener.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"READY=1");

        use std::os::linux::net::SocketAddrExt;
        let name = format!("credmint-notify-test-{}", std::process::id());
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let abstract_listener = UnixDatagram::bind_addr(&addr).unwrap();
        assert!(notify_to(format!("@{name}").as_ref(), "STOPPING=1"));
        let n = abstract_listener.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"STOPPING=1");

        drop(listener);
        assert!(!notify_to(path.as_os_str(), "READY=1"), "nobody listening");
    }
}
