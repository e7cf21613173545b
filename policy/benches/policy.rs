//! Decision latency at 10, 1,000 and 50,000 rules (a mix of exact, path-glob, argument-glob,
//! bare-name and exact-argv rules), and the cost of parsing and resolving a command line.

use std::hint::black_box;
use std::path::{Path, PathBuf};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use occ_policy::file::CommandPolicy;
use occ_policy::{
    decide, grammar, resolve, Binding, PolicyConfig, Request, ResolvedCommand, SudoRequest, Target,
};

fn policy_text(n: usize) -> String {
    let mut allow = Vec::new();
    let mut deny = Vec::new();
    let mut allow_exact = Vec::new();
    for i in 0..n {
        let rule = match i % 5 {
            0 => format!("/usr/local/app{i}/bin/tool{i} start"),
            1 => format!("/opt/app{i}/bin/*"),
            2 => format!("tool{i} --config /etc/app{i}/*.conf **"),
            3 => format!("svc{i} restart 'unit{i}*'"),
            _ => {
                allow_exact.push(vec![format!("/usr/sbin/daemon{i}"), "--once".to_string()]);
                continue;
            }
        };
        if i % 10 == 3 {
            deny.push(rule);
        } else {
            allow.push(rule);
        }
    }
    // The rule the benchmarked request matches, last in the file.
    allow.push("systemctl restart nginx*".to_string());
    serde_json::json!({"version": 2, "allow": allow, "deny": deny, "allow_exact": allow_exact})
        .to_string()
}

fn policy_with(n: usize) -> PolicyConfig {
    let commands = CommandPolicy::parse(Path::new("bench.json"), &policy_text(n))
        .expect("bench policy compiles");
    PolicyConfig {
        commands,
        ..PolicyConfig::default()
    }
}

fn request(path: &str, args: &[&str]) -> Request {
    let command = ResolvedCommand {
        path: PathBuf::from(path),
        real_path: PathBuf::from(path),
        dev: 64769,
        ino: 1234,
        via_secure_path: true,
    };
    let mut argv = vec![path.to_string()];
    argv.extend(args.iter().map(|s| s.to_string()));
    let binding = Binding {
        caller_uid: 1001,
        target_uid: 0,
        target_gid: 0,
        path: path.into(),
        dev: 64769,
        ino: 1234,
        argv: argv.clone(),
        cwd: "/".into(),
        env: vec![],
        preserved_env: vec![],
        session_id: Some("bench".into()),
        flags: String::new(),
    };
    Request {
        sudo: SudoRequest::default(),
        target: Target {
            user: "root".into(),
            uid: 0,
            gid: 0,
            group: None,
            home: "/root".into(),
            shell: "/bin/sh".into(),
        },
        command,
        argv,
        cwd: "/".into(),
        preserved_env: vec![],
        runs_arbitrary_code: false,
        unwrapped: Default::default(),
        flags: Default::default(),
        requester_writable: vec![],
        session_id: Some("bench".into()),
        untrusted: false,
        binding,
    }
}

fn decisions(c: &mut Criterion) {
    let mut g = c.benchmark_group("decide");
    let hit = request("/usr/bin/systemctl", &["restart", "nginx"]);
    let miss = request("/opt/app1/lib/x", &["--flag", "value"]);
    for n in [10usize, 1_000, 50_000] {
        let p = policy_with(n);
        g.bench_with_input(BenchmarkId::new("allowlisted", n), &p, |b, p| {
            b.iter(|| decide(black_box(&hit), p))
        });
        g.bench_with_input(BenchmarkId::new("not_in_allowlist", n), &p, |b, p| {
            b.iter(|| decide(black_box(&miss), p))
        });
    }
    g.finish();
}

fn parse_and_resolve(c: &mut Criterion) {
    let words = [
        "-nu",
        "root",
        "-H",
        "FOO=1",
        "--",
        "systemctl",
        "restart",
        "nginx",
    ];
    c.bench_function("parse", |b| b.iter(|| grammar::parse(black_box(&words))));
    let caller = resolve::Caller::from_uid(0);
    c.bench_function("parse+resolve (sh on secure_path, target root)", |b| {
        b.iter(|| {
            let r = grammar::parse(black_box(&["-u", "root", "sh", "-c", "true"])).expect("parses");
            let t = resolve::resolve_target(&r, &caller).expect("root exists");
            let cmd = resolve::resolve_command(
                &r.command[0],
                occ_policy::file::DEFAULT_SECURE_PATH,
                Path::new("/"),
            )
            .expect("sh exists");
            (t, cmd)
        })
    });
}

fn loading(c: &mut Criterion) {
    let mut g = c.benchmark_group("load command-policy.json");
    g.sample_size(10);
    for n in [1_000usize, 50_000] {
        let text = policy_text(n);
        g.bench_with_input(BenchmarkId::from_parameter(n), &text, |b, t| {
            b.iter(|| {
                CommandPolicy::parse(Path::new("bench.json"), black_box(t)).map(|p| p.allow.len())
            })
        });
    }
    g.finish();
}

criterion_group!(benches, decisions, parse_and_resolve, loading);
criterion_main!(benches);
