use super::*;

#[test]
fn intervals() {
    assert_eq!(Every::parse("15m").unwrap(), Every::Minutes(15));
    assert_eq!(Every::parse("1h").unwrap(), Every::Hours(1));
    assert_eq!(Every::parse("15m").unwrap().cron_fields(), "*/15 * * * *");
    assert_eq!(
        Every::parse("6h").unwrap().on_calendar(),
        "*-*-* 00/6:00:00"
    );
    assert!(Every::parse("7m").is_err());
    assert!(Every::parse("90s").is_err());
    assert!(Every::parse("5h").is_err());
}

#[test]
fn quoting() {
    assert_eq!(systemd_quote("/a b/100%\"x"), "\"/a b/100%%\\\"x\"");
    assert_eq!(cron_quote("/a b/it's 100%"), "'/a b/it'\\''s 100\\%'");
    assert!(render_cron(Path::new("/x\ny"), Path::new("/h"), Every::Minutes(5)).is_err());
}

fn fake_proc(procs: &[(u32, &str)]) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    std::fs::create_dir(d.path().join("self")).unwrap();
    for (pid, comm) in procs {
        let p = d.path().join(pid.to_string());
        std::fs::create_dir(&p).unwrap();
        std::fs::write(p.join("comm"), format!("{comm}\n")).unwrap();
    }
    d
}

#[test]
fn cron_daemon_is_found_by_its_process_name_only() {
    let none = fake_proc(&[(1, "init"), (40, "cronjob"), (41, "anacron"), (42, "sleep")]);
    assert_eq!(cron_daemon(none.path()), None);
    let debian = fake_proc(&[(1, "init"), (77, "cron")]);
    assert_eq!(cron_daemon(debian.path()), Some((77, "cron".into())));
    let cronie = fake_proc(&[(9, "crond"), (3, "bash")]);
    assert_eq!(cron_daemon(cronie.path()), Some((9, "crond".into())));
    assert_eq!(cron_daemon(Path::new("/nonexistent/proc")), None);
}

#[test]
fn a_failed_command_reads_as_its_exit_status_and_stderr() {
    use std::os::unix::process::ExitStatusExt;
    let o = ChildOutput {
        status: Some(std::process::ExitStatus::from_raw(1 << 8)),
        code: Some(1),
        timed_out: false,
        stdout: Vec::new(),
        stderr: b"Failed to connect to bus\n".to_vec(),
        truncated: false,
        elapsed: Duration::ZERO,
    };
    let t = how_it_ended(&o, Duration::from_secs(15));
    assert_eq!(t, "exited with status 1: Failed to connect to bus");
    assert!(!t.contains("Some("));
    let killed = ChildOutput {
        status: Some(std::process::ExitStatus::from_raw(9)),
        code: None,
        stderr: Vec::new(),
        ..o.clone()
    };
    assert_eq!(
        how_it_ended(&killed, Duration::from_secs(15)),
        "was killed by signal 9 and printed nothing on stderr"
    );
    let slow = ChildOutput {
        status: None,
        code: None,
        timed_out: true,
        ..o
    };
    assert!(how_it_ended(&slow, Duration::from_secs(15)).starts_with("timed out after 15s"));
}
