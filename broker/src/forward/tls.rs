//! TLS for the sudo_logsrvd forwarder (`"tls": true`): the client configuration built from the
//! entry's PEM files, and the handshake. The server is verified against `ca` only (never the
//! system's roots) under the HOST of `address` (an IP literal must be an IP SAN). It must never
//! fall back to plain TCP or skip verification: any failure is an error, and the event waits.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use occ_policy::file::{read_tls_file, TlsFile};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};

/// The TLS files of one `audit.forward` entry, read each time a configuration is built, so a
/// fixed file is picked up at the next retry.
#[derive(Clone, Debug)]
pub struct TlsFiles {
    pub ca: PathBuf,
    /// Client certificate and its key, for a server with `tls_checkpeer = true`.
    pub client: Option<(PathBuf, PathBuf)>,
}

/// A TLS client for one server.
pub struct TlsClient {
    config: Arc<ClientConfig>,
    server: ServerName<'static>,
}

/// A TLS session over TCP.
pub type TlsStream = StreamOwned<ClientConnection, TcpStream>;

impl TlsClient {
    /// Reads the PEM files (checked as broker.json's loader checks them, as `reader_uid`) and
    /// builds the client for `address`'s HOST.
    pub fn new(address: &str, files: &TlsFiles, reader_uid: u32) -> Result<TlsClient, String> {
        let label = format!("audit.forward[logsrvd {address}/tls]");
        let read = |which: TlsFile, path: &Path| {
            read_tls_file(
                Path::new("broker.json"),
                &format!("{label}.{}", which.key()),
                which,
                path,
                reader_uid,
            )
            .map_err(|e| e.to_string())
        };
        let certs_in =
            |which: TlsFile, path: &Path| -> Result<Vec<CertificateDer<'static>>, String> {
                let pem = read(which, path)?;
                let certs = CertificateDer::pem_slice_iter(&pem)
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| {
                        format!("{label}.{}: {}: bad PEM: {e}", which.key(), path.display())
                    })?;
                if certs.is_empty() {
                    return Err(format!(
                    "{label}.{}: {} holds no CERTIFICATE block; fix: point it at a PEM certificate",
                    which.key(),
                    path.display()
                ));
                }
                Ok(certs)
            };
        let mut roots = RootCertStore::empty();
        for c in certs_in(TlsFile::Ca, &files.ca)? {
            roots.add(c).map_err(|e| {
                format!(
                    "{label}.ca: {}: not a usable CA certificate: {e}",
                    files.ca.display()
                )
            })?;
        }
        // ring, not aws-lc-rs (cmake and a large C build); rustls 0.23.48 deprecates it only for
        // lacking post-quantum key exchange, which sudo_logsrvd's OpenSSL 3.0 does not offer.
        #[allow(deprecated, reason = "see above: ring keeps the build lean")]
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS setup: {e}"))?
            .with_root_certificates(roots);
        let config = match &files.client {
            None => builder.with_no_client_auth(),
            Some((cert, key)) => {
                let chain = certs_in(TlsFile::Cert, cert)?;
                let pem = read(TlsFile::Key, key)?;
                let key_der = PrivateKeyDer::from_pem_slice(&pem).map_err(|e| {
                    format!(
                        "{label}.key: {}: no usable private key ({e}); fix: write the key as PEM \
                         (PKCS#8, PKCS#1 or SEC1)",
                        key.display()
                    )
                })?;
                builder.with_client_auth_cert(chain, key_der).map_err(|e| {
                    format!(
                        "{label}.cert/key: {} and {} do not make a client identity: {e}",
                        cert.display(),
                        key.display()
                    )
                })?
            }
        };
        Ok(TlsClient {
            config: Arc::new(config),
            server: server_name(address)?,
        })
    }

    /// Completes the handshake on `sock`: the server's certificate chains to `ca` and names
    /// the host, or this fails.
    pub fn connect(&self, address: &str, mut sock: TcpStream) -> Result<TlsStream, String> {
        let mut conn = ClientConnection::new(Arc::clone(&self.config), self.server.clone())
            .map_err(|e| format!("TLS setup for {address}: {e}"))?;
        while conn.is_handshaking() {
            conn.complete_io(&mut sock)
                .map_err(|e| format!("TLS handshake with {address}: {e}"))?;
        }
        Ok(StreamOwned::new(conn, sock))
    }
}

/// The name the server's certificate must carry: `address` without its port (and without the
/// brackets of an IPv6 literal).
fn server_name(address: &str) -> Result<ServerName<'static>, String> {
    let host = address.rsplit_once(':').map_or(address, |(h, _)| h);
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    ServerName::try_from(host.to_string())
        .map_err(|e| format!("{address}: {host:?} cannot be checked against a certificate: {e}"))
}

/// A byte stream that can say "nothing more from me" and still read the server's answer.
pub trait HalfClose: Read + Write {
    fn close_writes(&mut self) -> std::io::Result<()>;
}

impl HalfClose for TcpStream {
    fn close_writes(&mut self) -> std::io::Result<()> {
        self.shutdown(std::net::Shutdown::Write)
    }
}

impl HalfClose for TlsStream {
    /// close_notify, then the TCP half-close, as sudo_logsrv.proto(5) step 10 has it.
    fn close_writes(&mut self) -> std::io::Result<()> {
        self.conn.send_close_notify();
        self.flush()?;
        self.sock.shutdown(std::net::Shutdown::Write)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_server_name_is_the_host_of_the_address() {
        let name = |a: &str| server_name(a).map(|n| n.to_str().into_owned());
        assert_eq!(name("127.0.0.1:30344").as_deref(), Ok("127.0.0.1"));
        assert_eq!(name("[::1]:30344").as_deref(), Ok("::1"));
        assert_eq!(
            name("logs.example.com:30344").as_deref(),
            Ok("logs.example.com")
        );
        assert!(matches!(
            server_name("127.0.0.1:1"),
            Ok(ServerName::IpAddress(_))
        ));
        assert!(server_name("bad_host!:1").is_err());
    }

    #[test]
    fn a_bad_ca_file_is_an_error_naming_the_key_never_a_client() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap();
        let uid = nix::unistd::geteuid().as_raw();
        let put = |name: &str, text: &str, mode: u32| {
            let p = d.path().join(name);
            std::fs::write(&p, text).unwrap();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
            p
        };
        let cases = [
            (d.path().join("absent.pem"), ".ca: ", "does not exist"),
            (
                put("empty.pem", "not pem\n", 0o644),
                ".ca: ",
                "holds no CERTIFICATE",
            ),
            (
                put("writable.pem", "", 0o666),
                ".ca: ",
                "writable by group or others",
            ),
        ];
        for (ca, at, problem) in cases {
            let files = TlsFiles { ca, client: None };
            let err = TlsClient::new("127.0.0.1:30344", &files, uid)
                .err()
                .expect("an error");
            assert!(
                err.contains("audit.forward[logsrvd 127.0.0.1:30344/tls"),
                "{err}"
            );
            assert!(err.contains(at) && err.contains(problem), "{err}");
        }
    }
}
