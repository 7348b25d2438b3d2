//! systemd's notify protocol (`sd_notify`), without libsystemd: one datagram per message to the
//! socket named by `$NOTIFY_SOCKET` (a path, or `@name` for the abstract namespace). The
//! controller says `READY=1` once it runs, `WATCHDOG=1` after every pass (a pass that hangs
//! stops the pings and systemd restarts the service, `WatchdogSec=`), and `STOPPING=1` on
//! SIGTERM. Without `$NOTIFY_SOCKET` (not under systemd) nothing is sent.

use std::os::unix::net::UnixDatagram;

pub struct Notifier {
    sock: UnixDatagram,
    target: String,
}

impl Notifier {
    pub fn from_env() -> Option<Notifier> {
        let target = std::env::var("NOTIFY_SOCKET")
            .ok()
            .filter(|t| !t.is_empty())?;
        let sock = UnixDatagram::unbound().ok()?;
        Some(Notifier { sock, target })
    }

    /// Best effort: systemd not listening is no reason to stop the controller.
    pub fn notify(&self, msg: &str) {
        let sent = match self.target.strip_prefix('@') {
            Some(name) => {
                use std::os::linux::net::SocketAddrExt;
                std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())
                    .and_then(|a| self.sock.send_to_addr(msg.as_bytes(), &a))
            }
            None => self.sock.send_to(msg.as_bytes(), &self.target),
        };
        if let Err(e) = sent {
            tracing::debug!("sd_notify {msg}: {e}");
        }
    }
}
