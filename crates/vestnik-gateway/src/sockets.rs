//! How many WebSockets each client address holds on this node, so one
//! address opening sockets in a loop cannot take the node's memory and file
//! descriptors. An IPv6 client is counted by its /64: one subscriber line
//! gets a whole /64 and can pick any address in it.
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

pub use vestnik_core::rate_limits::address_key as client_key;

/// Open sockets per client key on this node.
#[derive(Default)]
pub struct SocketsByIp {
    counts: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

/// Holds one counted socket; dropping it (the socket closed) gives it back.
pub struct SocketSlot {
    counts: Arc<Mutex<HashMap<IpAddr, usize>>>,
    key: IpAddr,
}

impl SocketsByIp {
    /// A slot for one more socket from `ip`, unless it already holds `max`.
    pub fn acquire(&self, ip: IpAddr, max: usize) -> Option<SocketSlot> {
        let key = client_key(ip);
        let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        let n = counts.entry(key).or_insert(0);
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(SocketSlot {
            counts: self.counts.clone(),
            key,
        })
    }

    /// Sockets `ip` (its key) holds now.
    pub fn held(&self, ip: IpAddr) -> usize {
        let counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        counts.get(&client_key(ip)).copied().unwrap_or(0)
    }
}

impl Drop for SocketSlot {
    fn drop(&mut self) {
        let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = counts.get_mut(&self.key) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                counts.remove(&self.key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_refused_past_the_limit_and_given_back_on_drop() {
        let sockets = SocketsByIp::default();
        let a: IpAddr = "2001:db8::1".parse().unwrap();
        let b: IpAddr = "2001:db8::2".parse().unwrap();
        let first = sockets.acquire(a, 2).unwrap();
        let _second = sockets.acquire(b, 2).unwrap();
        assert!(sockets.acquire(a, 2).is_none(), "same /64");
        assert!(sockets.acquire("192.0.2.1".parse().unwrap(), 2).is_some());
        drop(first);
        assert_eq!(sockets.held(a), 1);
        assert!(sockets.acquire(a, 2).is_some());
    }
}
