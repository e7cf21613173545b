//! What each wrapper form wraps, read on this host's real files (`env`, `nice`, `setarch`, …
//! are in Debian's coreutils and util-linux).

use super::*;

const SP: &str = "/usr/sbin:/usr/bin:/sbin:/bin";

fn words(s: &str) -> Vec<String> {
    split_words(s).expect("words")
}

fn unwrap_line(line: &str) -> Unwrapped {
    let w = words(line);
    let cmd = resolve::resolve_command(&w[0], SP, Path::new("/")).expect("wrapper resolves");
    unwrap(&cmd, &w[1..], Path::new("/"), SP)
}

/// The innermost argv, argv[0] by file name.
fn innermost(u: &Unwrapped) -> Vec<String> {
    let mut argv = u.levels.last().map(|l| l.argv.clone()).unwrap_or_default();
    if let Some(first) = argv.first_mut() {
        *first = Path::new(first.as_str())
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
    }
    argv
}

#[test]
fn every_wrapper_form_is_read_through_to_rm() {
    let cases = [
        "env rm -rf /",
        "env -i rm -rf /",
        "env - rm -rf /",
        "env -u HOME -C / FOO=1 rm -rf /",
        "env --unset=HOME --chdir=/ rm -rf /",
        "env -S 'rm -rf' /",
        "env -S '-i rm -rf /'",
        "env -- rm -rf /",
        "nice rm -rf /",
        "nice -n 5 rm -rf /",
        "nice -n5 rm -rf /",
        "nice --adjustment=5 rm -rf /",
        "nice -10 rm -rf /",
        "ionice -c 3 rm -rf /",
        "ionice -c3 -n7 rm -rf /",
        "nohup rm -rf /",
        "timeout 5 rm -rf /",
        "timeout -k 1 -s KILL 5s rm -rf /",
        "timeout --kill-after=1 --sig=KILL 5 rm -rf /",
        "stdbuf -o0 -eL rm -rf /",
        "stdbuf --output=0 rm -rf /",
        "chrt -o 0 rm -rf /",
        "chrt --other 0 rm -rf /",
        "chrt -b rm -rf /",
        "taskset 1 rm -rf /",
        "taskset -c 0-1 rm -rf /",
        "setarch x86_64 rm -rf /",
        "setarch x86_64 -R rm -rf /",
        "setarch x86_64 --addr-no-randomize -- rm -rf /",
        "linux64 rm -rf /",
        "linux32 -R rm -rf /",
        "x86_64 rm -rf /",
        "setsid rm -rf /",
        "setsid -f -w rm -rf /",
        "flock /tmp rm -rf /",
        "flock -w 5 -x /tmp rm -rf /",
        "time rm -rf /",
        "time -f %e -q rm -rf /",
        "prlimit --nofile=1024 rm -rf /",
        "prlimit -n1024 -c rm -rf /",
        "ld.so /usr/bin/rm -rf /",
        "ld.so --inhibit-cache /usr/bin/rm -rf /",
        "nice env timeout 5 setarch x86_64 rm -rf /",
        "env nice -n 1 ionice -c 3 stdbuf -o0 rm -rf /",
    ];
    for line in cases {
        let u = unwrap_line(line);
        assert_eq!(
            innermost(&u),
            vec!["rm", "-rf", "/"],
            "{line}: {:?} ({:?})",
            u.levels,
            u.unreadable
        );
        assert!(u.outer_is_wrapper, "{line}");
        let last = u.levels.last().expect("a level");
        assert!(last.resolved && !last.wrapper, "{line}: {last:?}");
        assert_eq!(last.command.real_name(), "rm", "{line}");
        let loader_only = line.starts_with("ld.so");
        assert!(
            u.unreadable.is_none() || loader_only,
            "{line}: {:?}",
            u.unreadable
        );
    }
}

#[test]
fn forms_that_run_nothing_else() {
    for line in [
        "env",
        "env --help",
        "nice",
        "ionice -p 1",
        "chrt -p 1",
        "chrt -m",
        "taskset -p 1",
        "setarch --list",
        "flock 3",
        "prlimit -p 1",
        "prlimit --nofile=5 -p 1",
        "timeout 5",
    ] {
        let u = unwrap_line(line);
        assert!(u.levels.is_empty(), "{line}: {:?}", u.levels);
        assert!(u.unreadable.is_none(), "{line}: {:?}", u.unreadable);
    }
}

#[test]
fn forms_that_run_a_shell() {
    let u = unwrap_line("setarch x86_64");
    assert_eq!(innermost(&u), vec!["sh"]);
    let u = unwrap_line("flock /tmp -c 'rm -rf /'");
    assert_eq!(innermost(&u), vec!["sh", "-c", "rm -rf /"]);
    let u = unwrap_line("flock -c 'id' /tmp");
    assert_eq!(innermost(&u), vec!["sh", "-c", "id"]);
}

#[test]
fn what_cannot_be_read_is_said() {
    for line in [
        "env -S '$CMD'",
        "env -S 'rm\\x20-rf /'",
        "env -Z rm",
        "env --bogus rm",
        "env PATH=.:/usr/bin rm -rf /",
        "env LD_PRELOAD=/tmp/x.so id",
        "env PYTHONPATH=/tmp python3",
        "nice -n",
        "timeout --kill-after",
        "ld.so --preload /tmp/x.so /usr/bin/id",
        "ld.so --library-path /tmp /usr/bin/id",
        "nohup ./no-such-thing",
        "nice /tmp/definitely-missing-occ",
        "nice nice nice nice nice nice nice nice nice id",
    ] {
        let u = unwrap_line(line);
        assert!(u.unreadable.is_some(), "{line}: {:?}", u.levels);
    }
}

#[test]
fn env_path_assignments_steer_the_lookup() {
    let u = unwrap_line("env PATH=/bin rm -rf /");
    assert!(u.unreadable.is_none(), "{:?}", u.unreadable);
    assert_eq!(innermost(&u), vec!["rm", "-rf", "/"]);
}

#[test]
fn abbreviations_follow_getopt_long() {
    let spec = Spec {
        short_arg: "k",
        short_opt: "",
        short_flag: "f",
        long_arg: &["kill-after", "signal"],
        long_opt: &[],
        long_flag: &["foreground", "help", "version"],
    };
    let w = words("--kill 1 --fore -fk2 x y");
    let (opts, i) = getopt(&w, &spec).expect("reads");
    assert_eq!(i, 4);
    assert_eq!(
        opts,
        vec![
            ("--kill-after".to_string(), Some("1".to_string())),
            ("--foreground".to_string(), None),
            ("-f".to_string(), None),
            ("-k".to_string(), Some("2".to_string())),
        ]
    );
    // `--ver` is version; `--v` alone would still be unique here, `--` ends options.
    assert!(getopt(&words("--nosuch x"), &spec).is_err());
}

#[test]
fn busybox_applets_are_named_not_looked_up() {
    // No busybox on the host is needed: the applet word is read from the argv.
    assert_eq!(kind_of("busybox"), Some(Kind::Busybox));
    match read(Kind::Busybox, &words("rm -rf /")).expect("reads") {
        Inner::Runs { argv, .. } => assert_eq!(argv, words("rm -rf /")),
        Inner::Nothing => panic!("busybox rm runs rm"),
    }
    assert!(matches!(
        read(Kind::Busybox, &words("--list")),
        Ok(Inner::Nothing)
    ));
}

#[test]
fn loader_names() {
    for n in [
        "ld.so",
        "ld-linux-x86-64.so.2",
        "ld-linux.so.2",
        "ld-linux-aarch64.so.1",
        "ld64.so.2",
        "ld-musl-x86_64.so.1",
    ] {
        assert!(is_loader_name(n), "{n}");
    }
    for n in ["ld", "ldd", "ldconfig", "ld.bfd", "ld.gold"] {
        assert!(!is_loader_name(n), "{n}");
    }
}
