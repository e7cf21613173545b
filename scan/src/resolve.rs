//! Best-effort name resolution for egress rules: `host` names are resolved forward, and remote
//! addresses reverse (for `host_regex`), each with a timeout and a per-run cache. DNS can
//! lie, change between the connection and the scan, or time out, so a report built on it says
//! so; a name that does not resolve in time allows nothing.

use std::collections::HashMap;
use std::net::{IpAddr, ToSocketAddrs};
use std::process::Command;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::exec;

/// The outcome of one forward lookup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HostResolution {
    /// The name.
    pub host: String,
    /// Its addresses (empty when it failed).
    pub addresses: Vec<IpAddr>,
    /// Why it failed, when it did.
    pub error: Option<String>,
}

/// The outcome of one reverse lookup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReverseResolution {
    /// The address.
    pub address: IpAddr,
    /// Names found (empty when none, or when it failed).
    pub names: Vec<String>,
    /// Why it failed, when it did.
    pub error: Option<String>,
}

/// A resolver with a timeout and a cache.
#[derive(Debug)]
pub struct Resolver {
    timeout: Duration,
    enabled: bool,
    forward: HashMap<String, HostResolution>,
    reverse: HashMap<IpAddr, ReverseResolution>,
}

impl Resolver {
    /// A resolver that waits at most `timeout` per lookup.
    pub fn new(timeout: Duration) -> Resolver {
        Resolver {
            timeout,
            enabled: true,
            forward: HashMap::new(),
            reverse: HashMap::new(),
        }
    }

    /// A resolver that never looks anything up (`--no-resolve`): names match only literal
    /// addresses.
    pub fn disabled() -> Resolver {
        Resolver {
            enabled: false,
            ..Resolver::new(Duration::ZERO)
        }
    }

    /// Whether lookups are performed.
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// The timeout per lookup.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Resolves every name not yet cached, in parallel, all within one timeout.
    pub fn prefetch<'a>(&mut self, hosts: impl IntoIterator<Item = &'a str>) {
        let mut todo: Vec<String> = hosts
            .into_iter()
            .filter(|h| !self.forward.contains_key(*h))
            .map(str::to_owned)
            .collect();
        todo.sort();
        todo.dedup();
        let (tx, rx) = mpsc::channel();
        let mut pending = 0usize;
        for host in todo {
            if let Some(r) = self.literal_or_disabled(&host) {
                self.forward.insert(host, r);
                continue;
            }
            let tx = tx.clone();
            pending += 1;
            // A lookup stuck in the libc resolver cannot be cancelled; the thread is left to
            // finish on its own and its late answer is dropped.
            let spawned = thread::Builder::new()
                .name("occ-scan-resolve".to_owned())
                .spawn(move || {
                    let r = (host.as_str(), 0u16)
                        .to_socket_addrs()
                        .map(|it| it.map(|a| a.ip()).collect::<Vec<_>>())
                        .map_err(|e| e.to_string());
                    let _ = tx.send((host, r));
                });
            if spawned.is_err() {
                pending -= 1;
            }
        }
        drop(tx);
        let deadline = Instant::now() + self.timeout;
        while pending > 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok((host, r)) => {
                    pending -= 1;
                    let (mut addresses, error) = match r {
                        Ok(a) => (a, None),
                        Err(e) => (Vec::new(), Some(e)),
                    };
                    addresses.sort();
                    addresses.dedup();
                    self.forward.insert(
                        host.clone(),
                        HostResolution {
                            host,
                            addresses,
                            error,
                        },
                    );
                }
                Err(_) => break,
            }
        }
    }

    fn literal_or_disabled(&self, host: &str) -> Option<HostResolution> {
        if let Ok(ip) = host
            .trim_matches(|c| c == '[' || c == ']')
            .parse::<IpAddr>()
        {
            return Some(HostResolution {
                host: host.to_owned(),
                addresses: vec![ip],
                error: None,
            });
        }
        (!self.enabled).then(|| HostResolution {
            host: host.to_owned(),
            addresses: Vec::new(),
            error: Some("name resolution disabled (--no-resolve)".to_owned()),
        })
    }

    /// The addresses of `host` (resolving it first if needed). A timeout gives an entry with
    /// an error and no addresses.
    pub fn forward(&mut self, host: &str) -> &HostResolution {
        if !self.forward.contains_key(host) {
            self.prefetch([host]);
        }
        let timeout = self.timeout;
        self.forward
            .entry(host.to_owned())
            .or_insert_with(|| HostResolution {
                host: host.to_owned(),
                addresses: Vec::new(),
                error: Some(format!("no answer within {} ms", timeout.as_millis())),
            })
    }

    /// Names of `ip`, through `getent hosts` (the system's NSS: /etc/hosts, then DNS PTR).
    pub fn reverse(&mut self, ip: IpAddr) -> &ReverseResolution {
        let timeout = self.timeout;
        let enabled = self.enabled;
        self.reverse.entry(ip).or_insert_with(|| {
            if !enabled {
                return ReverseResolution {
                    address: ip,
                    names: Vec::new(),
                    error: Some("name resolution disabled (--no-resolve)".to_owned()),
                };
            }
            reverse_lookup(ip, timeout)
        })
    }

    /// Every forward lookup made, sorted by name.
    pub fn hosts(&self) -> Vec<HostResolution> {
        let mut v: Vec<_> = self.forward.values().cloned().collect();
        v.sort_by(|a, b| a.host.cmp(&b.host));
        v
    }

    /// Every reverse lookup made, sorted by address.
    pub fn addresses(&self) -> Vec<ReverseResolution> {
        let mut v: Vec<_> = self.reverse.values().cloned().collect();
        v.sort_by_key(|r| r.address);
        v
    }
}

fn reverse_lookup(ip: IpAddr, timeout: Duration) -> ReverseResolution {
    let fail = |e: String| ReverseResolution {
        address: ip,
        names: Vec::new(),
        error: Some(e),
    };
    let Some(getent) = exec::find_program("getent") else {
        return fail("getent not found; reverse lookups unavailable".to_owned());
    };
    let mut cmd = Command::new(getent);
    cmd.args(["hosts", &ip.to_string()]);
    match exec::run(cmd, None, timeout) {
        Ok(done) if done.timed_out => fail(format!(
            "getent hosts {ip}: timed out after {} ms and was killed",
            timeout.as_millis()
        )),
        Ok(done) => {
            // `getent hosts` exits 2 when the address has no name: not an error.
            let text = String::from_utf8_lossy(&done.stdout);
            let mut names: Vec<String> = text
                .lines()
                .flat_map(|l| l.split_whitespace().skip(1))
                .map(|n| n.trim_end_matches('.').to_ascii_lowercase())
                .collect();
            names.sort();
            names.dedup();
            ReverseResolution {
                address: ip,
                names,
                error: None,
            }
        }
        Err(e) => fail(format!("getent hosts {ip}: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_resolve_without_lookup_even_when_disabled() {
        let mut r = Resolver::disabled();
        assert_eq!(
            r.forward("192.0.2.9").addresses,
            vec!["192.0.2.9".parse::<IpAddr>().unwrap()]
        );
        assert_eq!(
            r.forward("[::1]").addresses,
            vec!["::1".parse::<IpAddr>().unwrap()]
        );
        let e = r.forward("example.invalid").clone();
        assert!(e.addresses.is_empty());
        assert!(e.error.unwrap().contains("disabled"));
    }

    #[test]
    fn localhost_resolves_and_is_cached() {
        let mut r = Resolver::new(Duration::from_secs(1));
        let first = r.forward("localhost").clone();
        assert!(
            first.addresses.iter().any(|a| a.is_loopback()),
            "localhost should resolve to loopback: {first:?}"
        );
        assert_eq!(r.hosts().len(), 1);
        assert_eq!(r.forward("localhost"), &first);
    }

    #[test]
    fn reverse_of_loopback_names_localhost() {
        let mut r = Resolver::new(Duration::from_secs(1));
        let names = r.reverse("127.0.0.1".parse().unwrap()).names.clone();
        assert!(names.iter().any(|n| n == "localhost"), "{names:?}");
    }
}
