//! TLS to sudo_logsrvd end to end, on 127.0.0.1 only. Debian bookworm's sudo_logsrvd is built
//! without TLS (a `listen_address = …(tls)` line stops it with "TLS not supported"); Debian
//! trixie's is built with OpenSSL, so the tests run that one, from a debootstrapped trixie root
//! under `chroot`, with `listen_address = …(tls)` and `tls_checkpeer = true`. Certificates are
//! made with `openssl` at test time. Needs root, the occ-agent user, openssl and that root.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::approval::{pending_id, ready, text, AgentHome};
use crate::forward::{status, wait_for, Logsrvd, TlsServer, LOGSRVD, POLICY};

/// A test CA, a second unrelated CA, and certificates for 127.0.0.1 (IP SAN) from each.
struct Pki {
    dir: tempfile::TempDir,
}

impl Pki {
    /// `ca` signs `server` and `client`; `rogue-ca` signs `rogue-server`. Keys the broker
    /// reads belong to the agent, 0600.
    fn new((uid, gid): (u32, u32)) -> Pki {
        let dir = tempfile::Builder::new()
            .prefix("occ-tls")
            .tempdir()
            .unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let p = Pki { dir };
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ];
        for ca in ["ca", "rogue-ca"] {
            p.openssl(
                &[
                    &["req", "-x509"],
                    &ec[..],
                    // OpenSSL 3 (trixie's sudo_logsrvd checks its own chain at start) wants
                    // a CA's key usage stated.
                    &[
                        "-addext",
                        "basicConstraints=critical,CA:TRUE",
                        "-addext",
                        "keyUsage=critical,keyCertSign,cRLSign",
                    ],
                    &["-days", "2", "-subj"],
                ],
                &[
                    &format!("/CN=occ test {ca}"),
                    "-keyout",
                    &p.path(&format!("{ca}.key")),
                    "-out",
                    &p.path(&format!("{ca}.pem")),
                ],
            );
        }
        for (name, ca, usage) in [
            ("server", "ca", "serverAuth"),
            ("client", "ca", "clientAuth"),
            ("rogue-server", "rogue-ca", "serverAuth"),
        ] {
            let ext = p.path(&format!("{name}.ext"));
            std::fs::write(
                &ext,
                format!(
                    "basicConstraints=CA:FALSE\nsubjectAltName=IP:127.0.0.1\n\
                     keyUsage=critical,digitalSignature\nextendedKeyUsage={usage}\n"
                ),
            )
            .unwrap();
            p.openssl(
                &[&["req", "-new"], &ec[..], &["-subj", "/CN=127.0.0.1"]],
                &[
                    "-keyout",
                    &p.path(&format!("{name}.key")),
                    "-out",
                    &p.path(&format!("{name}.csr")),
                ],
            );
            p.openssl(
                &[&["x509", "-req", "-days", "2", "-CAcreateserial"]],
                &[
                    "-in",
                    &p.path(&format!("{name}.csr")),
                    "-CA",
                    &p.path(&format!("{ca}.pem")),
                    "-CAkey",
                    &p.path(&format!("{ca}.key")),
                    "-extfile",
                    &ext,
                    "-out",
                    &p.path(&format!("{name}.pem")),
                ],
            );
        }
        for f in ["ca.pem", "client.pem"] {
            std::fs::set_permissions(p.dir.path().join(f), std::fs::Permissions::from_mode(0o644))
                .unwrap();
        }
        let key = p.dir.path().join("client.key");
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
        std::os::unix::fs::chown(&key, Some(uid), Some(gid)).unwrap();
        p
    }

    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }

    fn openssl(&self, fixed: &[&[&str]], more: &[&str]) {
        let out = Command::new("openssl")
            .args(fixed.concat())
            .args(more)
            .stdin(Stdio::null())
            .output()
            .expect("run openssl");
        assert!(out.status.success(), "openssl: {}", text(&out.stderr));
    }
}

/// Where the tests find a sudo_logsrvd built with OpenSSL: `$OCC_TLS_LOGSRVD_ROOT`, or
/// `/opt/occ-ci/trixie`, a Debian trixie root (`.ci/run` makes it with debootstrap).
fn tls_root() -> Option<PathBuf> {
    let root = std::env::var_os("OCC_TLS_LOGSRVD_ROOT")
        .map_or_else(|| PathBuf::from("/opt/occ-ci/trixie"), PathBuf::from);
    let found = |p: &str| {
        Command::new(p)
            .arg("version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok()
    };
    if root.join(LOGSRVD.trim_start_matches('/')).is_file() && found("openssl") {
        return Some(root);
    }
    occ_tests::skip(&format!(
        "needs openssl and a Debian root with a TLS-capable sudo_logsrvd at {} (make one with \
         `debootstrap --variant=minbase --include=sudo trixie {}`, or set OCC_TLS_LOGSRVD_ROOT)",
        root.display(),
        root.display()
    ));
    None
}

/// A `logsrvd` forwarder entry with TLS to `port`, trusting `ca` (and with the test client
/// certificate when `client`).
fn tls_entry(pki: &Pki, port: u16, client: bool) -> String {
    let identity = if client {
        format!(
            r#", "cert": "{}", "key": "{}""#,
            pki.path("client.pem"),
            pki.path("client.key")
        )
    } else {
        String::new()
    };
    format!(
        r#"{{"type": "logsrvd", "address": "127.0.0.1:{port}", "tls": true, "ca": "{}"{identity}}}"#,
        pki.path("ca.pem")
    )
}

#[test]
fn forwards_to_real_sudo_logsrvd_over_tls_with_a_client_certificate() {
    let Some(ids) = ready() else { return };
    let Some(root) = tls_root() else { return };
    let pki = Pki::new(ids);
    let server = Logsrvd::start_tls(
        &root,
        &TlsServer {
            pki: pki.dir.path(),
            cert: "server",
            ca: "ca",
            checkpeer: true,
        },
    );
    let h = AgentHome::new(ids);
    h.write_security("command-policy.json", POLICY);
    h.write_security(
        "broker.json",
        &format!(
            r#"{{"audit": {{"forward": [{}]}}}}"#,
            tls_entry(&pki, server.port, true)
        ),
    );
    let id = pending_id(&h.sudo(&["-n", "/usr/bin/id", "-u"], &[]));
    assert!(h.occ(&["approve", "--yes", &id]).status.success());
    let ran = h.sudo(&["-n", "/usr/bin/id", "-u"], &[]);
    assert_eq!(text(&ran.stdout), "0\n", "{}", text(&ran.stderr));
    let blocked = h.sudo(&["-n", "/usr/bin/rm", "/nonexistent"], &[]);
    assert_eq!(blocked.status.code(), Some(1));

    let local = h.events();
    let carried: Vec<&Value> = local
        .iter()
        .filter(|e| {
            occ_audit::witness::logsrvd_message(e["event_type"].as_str().unwrap_or("")).is_some()
        })
        .collect();
    let mut kinds: Vec<&str> = carried
        .iter()
        .map(|e| e["event_type"].as_str().unwrap())
        .collect();
    // exec_finish is written when the shim reports the exit, which may come after the next
    // request's policy_block: the log's order, not this list's, is what the server must see.
    kinds.sort_unstable();
    assert_eq!(kinds, ["exec_finish", "exec_start", "policy_block"]);
    wait_for(20, "three sessions at sudo_logsrvd over TLS", || {
        server
            .records()
            .iter()
            .filter(|(k, _)| k == "accept" || k == "reject")
            .count()
            >= 3
    });
    let recs = server.records();
    let shape: Vec<(String, Value, Value)> = recs
        .iter()
        .map(|(k, r)| {
            (
                k.clone(),
                r.get("occ_seq").cloned().unwrap_or(Value::Null),
                r.get("occ_chain_hash").cloned().unwrap_or(Value::Null),
            )
        })
        .collect();
    // What sudo_logsrvd records for each carried event, in the local log's order.
    let mut want: Vec<(String, Value, Value)> = Vec::new();
    for e in &carried {
        let id = (e["seq"].clone(), e["chain_hash"].clone());
        match e["event_type"].as_str() {
            Some("exec_start") => want.push(("accept".into(), id.0, id.1)),
            Some("exec_finish") => {
                want.push(("accept".into(), id.0, id.1));
                want.push(("exit".into(), Value::Null, Value::Null));
            }
            _ => want.push(("reject".into(), id.0, id.1)),
        }
    }
    assert_eq!(shape, want, "{recs:?}");
    let of = |kind: &str| {
        recs.iter()
            .find(|(k, _)| k == kind)
            .map(|(_, r)| r.clone())
            .unwrap_or_default()
    };
    let block = carried
        .iter()
        .find(|e| e["event_type"] == "policy_block")
        .expect("the block");
    assert_eq!(of("exit")["exit_value"], 0);
    assert_eq!(of("accept")["runuser"], "root");
    assert_eq!(of("reject")["occ_reason_code"], block["reason_code"]);
    let st = status(&h);
    let fw = &st["audit"]["forward"][0];
    assert_eq!(
        fw["name"],
        format!("logsrvd 127.0.0.1:{}/tls", server.port),
        "{st}"
    );
    assert_eq!(fw["state"], "connected", "{st}");
    assert_eq!(fw["backlog"], 0, "{st}");
}

#[test]
fn tls_forwarder_never_delivers_to_a_server_from_another_ca_or_without_a_client_cert() {
    let Some(ids) = ready() else { return };
    let Some(root) = tls_root() else { return };
    let pki = Pki::new(ids);
    // [0]: the server presents a certificate for 127.0.0.1 from another CA.
    let rogue = Logsrvd::start_tls(
        &root,
        &TlsServer {
            pki: pki.dir.path(),
            cert: "rogue-server",
            ca: "rogue-ca",
            checkpeer: false,
        },
    );
    // [1]: the right server, which demands a client certificate we do not give.
    let strict = Logsrvd::start_tls(
        &root,
        &TlsServer {
            pki: pki.dir.path(),
            cert: "server",
            ca: "ca",
            checkpeer: true,
        },
    );
    let h = AgentHome::new(ids);
    h.write_security("command-policy.json", POLICY);
    h.write_security(
        "broker.json",
        &format!(
            r#"{{"audit": {{"forward": [{}, {}]}}}}"#,
            tls_entry(&pki, rogue.port, true),
            tls_entry(&pki, strict.port, false)
        ),
    );
    // Decisions go on as before: a block answered at once, an approved run that runs.
    for _ in 0..5 {
        let t0 = Instant::now();
        let out = h.sudo(&["-n", "/usr/bin/rm", "/nonexistent"], &[]);
        assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
        assert!(
            t0.elapsed() < Duration::from_secs(3),
            "a TLS failure slowed a request"
        );
    }
    let id = pending_id(&h.sudo(&["-n", "/usr/bin/id", "-u"], &[]));
    assert!(h.occ(&["approve", "--yes", &id]).status.success());
    let ran = h.sudo(&["-n", "/usr/bin/id", "-u"], &[]);
    assert_eq!(text(&ran.stdout), "0\n", "{}", text(&ran.stderr));

    wait_for(15, "both forwarders to retry", || {
        let st = status(&h);
        st["audit"]["forward"][0]["state"] == "retrying"
            && st["audit"]["forward"][1]["state"] == "retrying"
    });
    // Several more retries, then: nothing ever reached the server, everything still spooled.
    std::thread::sleep(Duration::from_secs(4));
    let st = status(&h);
    for (i, fw) in st["audit"]["forward"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
    {
        assert_eq!(fw["state"], "retrying", "[{i}] {st}");
        assert!(fw["backlog"].as_u64().unwrap() >= 7, "[{i}] {st}");
    }
    let rogue_err = st["audit"]["forward"][0]["last_error"].as_str().unwrap();
    assert!(
        rogue_err.contains("certificate") && rogue_err.contains("UnknownIssuer"),
        "{rogue_err}"
    );
    let strict_err = st["audit"]["forward"][1]["last_error"].as_str().unwrap();
    assert!(
        strict_err.starts_with(&format!("TLS session with 127.0.0.1:{}: ", strict.port))
            && strict_err.contains("CertificateRequired"),
        "{strict_err}"
    );
    let plain = text(&h.occ(&["status"]).stdout);
    assert!(
        plain.contains(&format!(
            "forward logsrvd 127.0.0.1:{}/tls: retrying (last error: TLS handshake with 127.0.0.1:{}: invalid peer certificate",
            rogue.port, rogue.port
        )),
        "{plain}"
    );
    for server in [&rogue, &strict] {
        assert!(server.records().is_empty(), "{:?}", server.records());
    }
}
