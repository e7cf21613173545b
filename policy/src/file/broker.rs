//! `broker.json`: the broker's own settings (approval stack, sessions, audit, limits, who may
//! request and approve), parsed strictly, and read one file at a time for `occ doctor` and occ-scan.

use super::*;

// ---------------------------------------------------------------------------------------------
// broker.json

/// An approval channel.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Channel {
    /// `occ approve ID`.
    Queue,
    /// A prompt on the requester's terminal, for a human sitting at it (opt-in).
    Tty,
}

/// A module of the approval stack.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Module {
    /// Required policy files exist.
    Files,
    /// The decision table.
    Policy,
    /// The session id is present when required.
    Session,
    /// Untrusted-source confirmation.
    Untrusted,
    /// A live grant.
    Grant,
    /// A human decision.
    Approve,
    /// The approver's token.
    Token,
}

/// PAM-style control flag.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Control {
    /// Failure refuses at once.
    Requisite,
    /// Failure refuses once the stack has finished.
    Required,
    /// Success ends the stack if nothing failed before.
    Sufficient,
}

/// One `module:control` entry of `approval.stack`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize)]
#[serde(try_from = "String")]
pub struct StackEntry {
    /// The module.
    pub module: Module,
    /// Its control flag.
    pub control: Control,
}

impl TryFrom<String> for StackEntry {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        let (m, c) = s.split_once(':').ok_or_else(|| {
            format!("{s:?} is not `module:control`; write e.g. \"grant:sufficient\"")
        })?;
        let module = match m {
            "files" => Module::Files,
            "policy" => Module::Policy,
            "session" => Module::Session,
            "untrusted" => Module::Untrusted,
            "grant" => Module::Grant,
            "approve" => Module::Approve,
            "token" => Module::Token,
            _ => return Err(format!("unknown module {m:?}; modules are files, policy, session, untrusted, grant, approve, token")),
        };
        let control = match c {
            "requisite" => Control::Requisite,
            "required" => Control::Required,
            "sufficient" => Control::Sufficient,
            _ => {
                return Err(format!(
                    "unknown control {c:?}; controls are requisite, required, sufficient"
                ))
            }
        };
        Ok(StackEntry { module, control })
    }
}

impl Module {
    /// The module's name as written in `broker.json` and in audit events.
    pub fn name(self) -> &'static str {
        match self {
            Module::Files => "files",
            Module::Policy => "policy",
            Module::Session => "session",
            Module::Untrusted => "untrusted",
            Module::Grant => "grant",
            Module::Approve => "approve",
            Module::Token => "token",
        }
    }
}

impl std::fmt::Display for StackEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let m = self.module.name();
        let c = match self.control {
            Control::Requisite => "requisite",
            Control::Required => "required",
            Control::Sufficient => "sufficient",
        };
        write!(f, "{m}:{c}")
    }
}

/// `approval` in `broker.json`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApprovalConfig {
    /// Approval channels.
    pub channels: Vec<Channel>,
    /// How long the shim waits for a decision (0: never waits).
    pub wait_seconds: u64,
    /// When a pending request expires.
    pub pending_expiry_minutes: u64,
    /// Lowercase hex SHA-256 of a generated approver token (128 random bits), if one is set.
    pub token_sha256: Option<String>,
    /// The argon2id PHC string (`$argon2id$v=19$m=…,t=…,p=…$salt$hash`) of an approver token a
    /// human chose, if one is set. At most one of the two token keys may be set.
    pub token_argon2id: Option<String>,
    /// The PAM-style stack.
    pub stack: Vec<StackEntry>,
    /// Only a valid SSH signature over the request's statement approves (`occ approve ID
    /// --signature`); tokens, the queue and the terminal can still deny.
    pub require_signature: bool,
    /// How many distinct approvers (none of them the requester) must approve a request
    /// (system mode; 1 in user mode, where the approver is the requester's own uid).
    pub quorum: u32,
    /// The longest `occ approve --for` may make a grant live, in minutes (`None`: no cap).
    /// A `--uses` grant without `--for` also ends after this long.
    pub max_grant_minutes: Option<u64>,
    /// The program told about every new pending request (`approval.notify`), if any.
    pub notify: Option<NotifyConfig>,
}

impl Default for ApprovalConfig {
    fn default() -> Self {
        let stack = [
            "files:requisite",
            "policy:requisite",
            "session:requisite",
            "untrusted:required",
            "grant:sufficient",
            "approve:required",
            "token:required",
        ]
        .iter()
        .filter_map(|s| StackEntry::try_from(s.to_string()).ok())
        .collect();
        ApprovalConfig {
            channels: vec![Channel::Queue],
            wait_seconds: 120,
            pending_expiry_minutes: 30,
            token_sha256: None,
            token_argon2id: None,
            stack,
            require_signature: false,
            quorum: 1,
            max_grant_minutes: None,
            notify: None,
        }
    }
}

/// `session` in `broker.json`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SessionConfig {
    /// Refuse requests without a session id.
    pub require_session_id: bool,
    /// A session grant dies after this much idle time.
    pub idle_timeout_minutes: u64,
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            require_session_id: false,
            idle_timeout_minutes: 30,
        }
    }
}

/// `limits` in `broker.json`: what one requesting uid may hold at once, in both modes, so no
/// requester can starve the others or the approvers (and, in user mode, no flooding agent can
/// grow its broker without bound).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Open request connections per requesting uid (system mode: on the request socket).
    pub connections_per_uid: usize,
    /// Pending requests per requesting uid.
    pub pending_per_uid: usize,
    /// Largest request (argv, cwd and forwarded environment, in bytes).
    pub request_bytes: usize,
    /// Open admin connections per uid (system mode: on the admin socket).
    pub admin_connections_per_uid: usize,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            connections_per_uid: 64,
            pending_per_uid: 32,
            request_bytes: 256 * 1024,
            admin_connections_per_uid: 16,
        }
    }
}

/// When the audit writer fsyncs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Fsync {
    /// After every record.
    Always,
    /// Group commit.
    Batch,
}

/// `audit` in `broker.json`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuditConfig {
    /// fsync policy.
    pub fsync: Fsync,
    /// Forward-secure sealing.
    pub seal: bool,
    /// Copies of every event sent elsewhere (sudo_logsrvd, syslog), spooled and in order.
    pub forward: Vec<Forward>,
    /// Most events one forwarder's spool holds while its destination is down; the overflow is
    /// dropped from forwarding (never from the local log) and recorded as `forward_overflow`.
    pub spool_max_events: usize,
}

/// The default `audit.spool_max_events`.
pub const DEFAULT_SPOOL_MAX_EVENTS: usize = 10_000;

impl Default for AuditConfig {
    fn default() -> Self {
        AuditConfig {
            fsync: Fsync::Always,
            seal: false,
            forward: Vec::new(),
            spool_max_events: DEFAULT_SPOOL_MAX_EVENTS,
        }
    }
}

/// One entry of `audit.forward`: where a copy of each event goes.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum Forward {
    /// sudo's log server, in its own protocol (sudo_logsrv.proto(5)).
    Logsrvd {
        /// `HOST:PORT`.
        address: String,
        /// TLS to the server (sudo_logsrvd's `listen_address = …(tls)` port).
        #[serde(default)]
        tls: bool,
        /// PEM file of the CA that signs the server's certificate (required with TLS; the
        /// system's roots are never used).
        #[serde(default)]
        ca: Option<PathBuf>,
        /// PEM file of the client certificate, for a server with `tls_checkpeer = true`.
        #[serde(default)]
        cert: Option<PathBuf>,
        /// PEM file of the client certificate's private key (owner-only: mode 0600 or 0400).
        #[serde(default)]
        key: Option<PathBuf>,
    },
    /// RFC 5424 syslog, the event in structured data, facility authpriv.
    Syslog {
        /// A local datagram socket, e.g. `/dev/log`.
        #[serde(default)]
        socket: Option<PathBuf>,
        /// `HOST:PORT` of a remote receiver.
        #[serde(default)]
        address: Option<String>,
        /// `udp` or `tcp` (with `address`; default `udp`).
        #[serde(default)]
        protocol: Option<SyslogProtocol>,
    },
}

/// The transport of a remote syslog receiver.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SyslogProtocol {
    /// One datagram per event.
    Udp,
    /// RFC 6587 octet counting over one connection.
    Tcp,
}

/// A file a `logsrvd` forwarder reads for TLS.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TlsFile {
    /// `ca`: the CA that signs the server's certificate.
    Ca,
    /// `cert`: the client certificate.
    Cert,
    /// `key`: the client certificate's private key, a secret.
    Key,
}

impl TlsFile {
    /// Its key in the `audit.forward` entry.
    pub fn key(self) -> &'static str {
        match self {
            TlsFile::Ca => "ca",
            TlsFile::Cert => "cert",
            TlsFile::Key => "key",
        }
    }
}

/// Reads one TLS file of a `logsrvd` forwarder as `reader_uid` (the broker's user) would: a
/// regular file, not a symlink, owned by `reader_uid` or root, not writable by group or others;
/// the private key also readable by its owner only, like every other secret of occ. Errors name
/// `config` (broker.json) and `at` (`audit.forward[0].key`), and say the fix.
pub fn read_tls_file(
    config: &Path,
    at: &str,
    which: TlsFile,
    path: &Path,
    reader_uid: u32,
) -> Result<Vec<u8>, FileError> {
    let fail = |problem: String, fix: String| invalid(config, at, problem, fix);
    let shown = path.display();
    let t = match trusted::open(path, reader_uid) {
        Ok(Some(t)) => t,
        Ok(None) => {
            return Err(fail(
                format!("{shown} does not exist"),
                format!("put the PEM file there, or correct \"{}\"", which.key()),
            ))
        }
        Err(TrustError::Open { source, .. }) => {
            return Err(fail(
                format!("cannot read {shown}: {source}"),
                format!("make it readable by uid {reader_uid} (the broker's user)"),
            ))
        }
        Err(TrustError::ForeignOwner { owner, .. }) => {
            return Err(fail(
                format!("{shown} is owned by uid {owner}, not by uid {reader_uid} or root"),
                format!("chown {reader_uid} {shown}"),
            ))
        }
        Err(TrustError::Writable { mode, .. }) => {
            return Err(fail(
                format!("{shown} is writable by group or others (mode {mode:o})"),
                format!("chmod go-w {shown}"),
            ))
        }
        Err(e) => {
            return Err(fail(
                e.to_string(),
                format!("make it a regular file owned by uid {reader_uid} or root"),
            ))
        }
    };
    {
        use std::os::unix::fs::MetadataExt;
        let mode = t.metadata.mode() & 0o7777;
        if which == TlsFile::Key && mode & 0o077 != 0 {
            return Err(fail(
                format!("the private key {shown} is readable by group or others (mode {mode:o})"),
                format!("chmod 600 {shown}"),
            ));
        }
    }
    let mut bytes = Vec::new();
    let mut f = t.file;
    f.read_to_end(&mut bytes)
        .map_err(|e| fail(format!("cannot read {shown}: {e}"), "check the file".into()))?;
    Ok(bytes)
}

impl Forward {
    /// A short stable name: the spool directory and `occ status` name the forwarder by it.
    pub fn label(&self) -> String {
        match self {
            Forward::Logsrvd {
                address, tls: true, ..
            } => format!("logsrvd {address}/tls"),
            Forward::Logsrvd { address, .. } => format!("logsrvd {address}"),
            Forward::Syslog {
                socket: Some(p), ..
            } => format!("syslog {}", p.display()),
            Forward::Syslog {
                address, protocol, ..
            } => format!(
                "syslog {}/{}",
                address.as_deref().unwrap_or("?"),
                match protocol {
                    Some(SyslogProtocol::Tcp) => "tcp",
                    _ => "udp",
                }
            ),
        }
    }

    /// The TLS files this entry names (none unless it is a `logsrvd` entry with TLS).
    pub fn tls_files(&self) -> Vec<(TlsFile, &Path)> {
        match self {
            Forward::Logsrvd {
                tls: true,
                ca,
                cert,
                key,
                ..
            } => [
                (TlsFile::Ca, ca),
                (TlsFile::Cert, cert),
                (TlsFile::Key, key),
            ]
            .into_iter()
            .filter_map(|(w, p)| p.as_deref().map(|p| (w, p)))
            .collect(),
            _ => Vec::new(),
        }
    }

    fn check(&self, file: &Path, key: &str) -> Result<(), FileError> {
        let host_port = |a: &str, k: &str| -> Result<(), FileError> {
            let ok = a
                .rsplit_once(':')
                .is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok_and(|p| p > 0));
            if ok {
                Ok(())
            } else {
                Err(invalid(
                    file,
                    &format!("{key}.{k}"),
                    format!("{a:?} is not HOST:PORT"),
                    "write e.g. \"logs.example.com:30343\" or \"127.0.0.1:514\"",
                ))
            }
        };
        match self {
            Forward::Logsrvd {
                address,
                tls,
                ca,
                cert,
                key: tls_key,
            } => {
                host_port(address, "address")?;
                let named = [("ca", ca), ("cert", cert), ("key", tls_key)];
                if !*tls {
                    for (k, v) in named {
                        if v.is_some() {
                            return Err(invalid(
                                file,
                                &format!("{key}.{k}"),
                                "is only used with \"tls\": true",
                                format!("remove \"{k}\", or set \"tls\": true"),
                            ));
                        }
                    }
                    return Ok(());
                }
                if ca.is_none() {
                    return Err(invalid(
                        file,
                        &format!("{key}.ca"),
                        "is missing: with \"tls\": true occ verifies the server's certificate \
                         against this CA only (the system's roots are not used)",
                        "write \"ca\": \"/etc/occ/logsrvd-ca.pem\", the PEM file of the CA that \
                         signed the server's certificate (sudo_logsrvd.conf's tls_cert)",
                    ));
                }
                match (cert, tls_key) {
                    (Some(_), None) => {
                        return Err(invalid(
                            file,
                            &format!("{key}.key"),
                            "is missing: \"cert\" needs its private key",
                            "write \"key\": the PEM file of the client certificate's key, or \
                             remove \"cert\" if the server does not check clients \
                             (tls_checkpeer = false)",
                        ))
                    }
                    (None, Some(_)) => {
                        return Err(invalid(
                            file,
                            &format!("{key}.cert"),
                            "is missing: \"key\" is only used with a client certificate",
                            "write \"cert\": the PEM file of the client certificate, or remove \
                             \"key\"",
                        ))
                    }
                    _ => {}
                }
                for (k, v) in named {
                    if let Some(p) = v.as_deref().filter(|p| !p.is_absolute()) {
                        return Err(invalid(
                            file,
                            &format!("{key}.{k}"),
                            format!("{} is not an absolute path", p.display()),
                            "write the file's absolute path",
                        ));
                    }
                }
                Ok(())
            }
            Forward::Syslog {
                socket,
                address,
                protocol,
            } => match (socket, address) {
                (Some(p), None) => {
                    if !p.is_absolute() {
                        return Err(invalid(
                            file,
                            &format!("{key}.socket"),
                            "is not an absolute path",
                            "write \"/dev/log\"",
                        ));
                    }
                    if protocol.is_some() {
                        return Err(invalid(
                            file,
                            &format!("{key}.protocol"),
                            "applies only to \"address\"",
                            "remove \"protocol\" (a local socket is always a datagram socket)",
                        ));
                    }
                    Ok(())
                }
                (None, Some(a)) => host_port(a, "address"),
                _ => Err(invalid(
                    file,
                    key,
                    "a syslog forwarder needs exactly one of \"socket\" and \"address\"",
                    "write {\"type\": \"syslog\", \"socket\": \"/dev/log\"} or \
                     {\"type\": \"syslog\", \"address\": \"HOST:PORT\", \"protocol\": \"tcp\"}",
                )),
            },
        }
    }
}

/// `broker.json`: every key optional, unknown keys refused.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BrokerConfig {
    /// Schema version, 1.
    pub version: u32,
    /// Where bare command names are looked up (absolute entries only).
    pub secure_path: String,
    /// The real sudo (user mode).
    pub real_sudo: PathBuf,
    /// Refuse when a policy file is missing.
    pub require_policy_files: bool,
    /// Allow `-s` and `-i`.
    pub allow_shells: bool,
    /// Names `-E`/`--preserve-env` may preserve (`NAME`, or a `PREFIX*` pattern).
    pub allow_preserve_env: Vec<String>,
    /// Caller variables passed through to commands (`NAME` or `PREFIX*`).
    pub env_keep: Vec<String>,
    /// Approval settings.
    pub approval: ApprovalConfig,
    /// Session settings.
    pub session: SessionConfig,
    /// Audit settings.
    pub audit: AuditConfig,
    /// Who may request (system mode): user or `%group` names.
    pub requesters: Vec<String>,
    /// Who may approve (system mode).
    pub approvers: Vec<String>,
    /// Per-uid limits (both modes).
    pub limits: LimitsConfig,
}

/// The default `secure_path`.
pub const DEFAULT_SECURE_PATH: &str =
    "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

impl Default for BrokerConfig {
    fn default() -> Self {
        BrokerConfig {
            version: 1,
            secure_path: DEFAULT_SECURE_PATH.into(),
            real_sudo: PathBuf::from("/usr/bin/sudo"),
            require_policy_files: false,
            allow_shells: false,
            allow_preserve_env: Vec::new(),
            env_keep: ["TERM", "LANG", "LC_*", "COLORTERM", "NO_COLOR"]
                .iter()
                .map(|s| s.to_string())
                .collect(),
            approval: ApprovalConfig::default(),
            session: SessionConfig::default(),
            audit: AuditConfig::default(),
            requesters: Vec::new(),
            approvers: Vec::new(),
            limits: LimitsConfig::default(),
        }
    }
}

/// Whether `name` matches a `NAME` or `PREFIX*` entry.
pub fn name_listed(list: &[String], name: &str) -> bool {
    list.iter().any(|p| match p.strip_suffix('*') {
        Some(prefix) => name.starts_with(prefix),
        None => p == name,
    })
}

/// Whether `t` has the shape of an argon2id PHC string: `$argon2id$v=19$` then parameters,
/// a salt and a hash in unpadded base64. The hash itself is checked where it is used.
fn is_argon2id_phc(t: &str) -> bool {
    let Some(rest) = t.strip_prefix("$argon2id$v=19$") else {
        return false;
    };
    let parts: Vec<&str> = rest.split('$').collect();
    let b64 = |p: &str| {
        !p.is_empty()
            && p.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/')
    };
    parts.len() == 3
        && parts[0].split(',').all(|kv| {
            kv.split_once('=').is_some_and(|(k, v)| {
                matches!(k, "m" | "t" | "p")
                    && !v.is_empty()
                    && v.bytes().all(|b| b.is_ascii_digit())
            })
        })
        && b64(parts[1])
        && b64(parts[2])
}

impl BrokerConfig {
    /// Parses and validates `broker.json` text: the first problem (see [`Self::parse_all`]).
    pub fn parse(file: &Path, text: &str) -> Result<BrokerConfig, FileError> {
        Self::parse_all(file, text).map_err(|mut v| v.remove(0))
    }

    /// Parses and validates `broker.json` text, reporting every problem (never an empty list).
    pub fn parse_all(file: &Path, text: &str) -> Result<BrokerConfig, Vec<FileError>> {
        let c: BrokerConfig = parse_typed_all(file, text)?;
        let mut errs = Vec::new();
        if c.version != 1 {
            errs.push(invalid(
                file,
                "version",
                format!("version {} is not supported", c.version),
                "write \"version\": 1",
            ));
        }
        if !c.secure_path.split(':').any(|d| d.starts_with('/')) {
            errs.push(invalid(
                file,
                "secure_path",
                "has no absolute directory",
                format!("use absolute directories, e.g. {DEFAULT_SECURE_PATH:?}"),
            ));
        }
        if !c.real_sudo.is_absolute() {
            errs.push(invalid(
                file,
                "real_sudo",
                "is not an absolute path",
                "write \"/usr/bin/sudo\"",
            ));
        }
        if let Some(t) = &c.approval.token_sha256 {
            if t.len() != 64
                || !t
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
            {
                errs.push(invalid(
                    file,
                    "approval.token_sha256",
                    "is not 64 lowercase hex digits",
                    "set it with `occ token set`, or write null",
                ));
            }
        }
        if let Some(t) = &c.approval.token_argon2id {
            if !is_argon2id_phc(t) {
                errs.push(invalid(
                    file,
                    "approval.token_argon2id",
                    "is not an argon2id PHC string ($argon2id$v=19$m=…,t=…,p=…$SALT$HASH)",
                    "set it with `occ token set`, or write null",
                ));
            }
            if c.approval.token_sha256.is_some() {
                errs.push(invalid(
                    file,
                    "approval.token_argon2id",
                    "is set together with approval.token_sha256, so which token counts would be \
                     ambiguous",
                    "keep one: remove approval.token_sha256 or approval.token_argon2id (`occ \
                     token clear`, then `occ token set`)",
                ));
            }
        }
        if c.approval.quorum == 0 {
            errs.push(invalid(
                file,
                "approval.quorum",
                "is 0, so nothing could ever be approved",
                "use 1 (one approver), or more for a two-person rule in system mode",
            ));
        }
        if c.approval.max_grant_minutes == Some(0) {
            errs.push(invalid(
                file,
                "approval.max_grant_minutes",
                "is 0, so no --for grant could be made",
                "use a positive number of minutes, or leave the key out for no cap",
            ));
        }
        if let Some(n) = &c.approval.notify {
            n.check_shape(file, &mut errs);
        }
        if c.approval.channels.is_empty() {
            errs.push(invalid(
                file,
                "approval.channels",
                "is empty, so nobody could approve",
                "write [\"queue\"]",
            ));
        }
        for (key, v) in [
            ("limits.connections_per_uid", c.limits.connections_per_uid),
            ("limits.pending_per_uid", c.limits.pending_per_uid),
            ("limits.request_bytes", c.limits.request_bytes),
            (
                "limits.admin_connections_per_uid",
                c.limits.admin_connections_per_uid,
            ),
        ] {
            if v == 0 {
                errs.push(invalid(
                    file,
                    key,
                    "is 0, so nothing could get through",
                    "use a positive number, or leave the key out for the default",
                ));
            }
        }
        for (i, f) in c.audit.forward.iter().enumerate() {
            if let Err(e) = f.check(file, &format!("audit.forward[{i}]")) {
                errs.push(e);
            }
        }
        if c.audit.spool_max_events == 0 {
            errs.push(invalid(
                file,
                "audit.spool_max_events",
                "is 0, so nothing could be forwarded",
                format!("use a positive number, e.g. {DEFAULT_SPOOL_MAX_EVENTS}"),
            ));
        }
        if c.session.idle_timeout_minutes == 0 {
            errs.push(invalid(
                file,
                "session.idle_timeout_minutes",
                "is 0",
                "use a positive number of minutes, e.g. 30",
            ));
        }
        for (key, list) in [
            ("allow_preserve_env", &c.allow_preserve_env),
            ("env_keep", &c.env_keep),
        ] {
            for (i, n) in list.iter().enumerate() {
                let base = n.strip_suffix('*').unwrap_or(n);
                if base.contains(['=', '*']) || (base.is_empty() && n != "*") {
                    errs.push(invalid(
                        file,
                        &format!("{key}[{i}]"),
                        format!("{n:?} is not a variable name or NAME* pattern"),
                        "write a name such as \"TERM\" or a prefix pattern such as \"LC_*\"",
                    ));
                }
            }
        }
        if errs.is_empty() {
            Ok(c)
        } else {
            Err(errs)
        }
    }

    /// What a user-mode broker refuses in an otherwise valid `broker.json`: a quorum above 1,
    /// since every user-mode approver is the requester's own uid.
    pub fn user_mode_problems(&self, file: &Path) -> Vec<FileError> {
        let mut errs = Vec::new();
        if self.approval.quorum > 1 {
            errs.push(invalid(
                file,
                "approval.quorum",
                format!(
                    "is {}, but a user-mode broker's only approver is the requester itself, so \
                     there are no distinct approvers to count",
                    self.approval.quorum
                ),
                "write 1 (or remove the key), or run occ in system mode for a two-person rule",
            ));
        }
        errs
    }

    /// Applies the caller's `OPENCLAW_REQUIRE_POLICY_FILES=1` and `OPENCLAW_REQUIRE_SESSION_ID=1`.
    /// These only ever tighten: no value turns a requirement off.
    pub fn tighten_from_env(&mut self, get: &dyn Fn(&str) -> Option<String>) {
        if get("OPENCLAW_REQUIRE_POLICY_FILES").as_deref() == Some("1") {
            self.require_policy_files = true;
        }
        if get("OPENCLAW_REQUIRE_SESSION_ID").as_deref() == Some("1") {
            self.session.require_session_id = true;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// prompt-policy.json

impl BrokerConfig {
    /// Reads `broker.json` at `file` as `reader_uid` would ([`read_checked`]) and parses it,
    /// then checks the files it names ([`BrokerConfig::check_files`]): `Ok(None)` when it does
    /// not exist. The caller's environment is not applied.
    pub fn load(file: &Path, reader_uid: u32) -> Result<Option<BrokerConfig>, FileError> {
        read_checked(file, reader_uid)?
            .map(|text| {
                let c = BrokerConfig::parse(file, &text)?;
                c.check_files(file, reader_uid)
                    .map_err(|mut e| e.remove(0))?;
                Ok(c)
            })
            .transpose()
    }

    /// Checks that every file this config names can be read by `reader_uid` as the broker
    /// will read it (the forwarders' TLS files, [`read_tls_file`]), and that the notifier is
    /// one the broker may run, as a user it may run it as ([`NotifyConfig::runner`]).
    /// Every problem is reported (never an empty list).
    pub fn check_files(&self, file: &Path, reader_uid: u32) -> Result<(), Vec<FileError>> {
        let mut errs = Vec::new();
        if let Some(n) = &self.approval.notify {
            if let Err(e) = n.runner(file, reader_uid) {
                errs.push(e);
            }
        }
        for (i, f) in self.audit.forward.iter().enumerate() {
            for (which, path) in f.tls_files() {
                let at = format!("audit.forward[{i}].{}", which.key());
                if let Err(e) = read_tls_file(file, &at, which, path, reader_uid) {
                    errs.push(e);
                }
            }
        }
        if errs.is_empty() {
            Ok(())
        } else {
            Err(errs)
        }
    }
}
