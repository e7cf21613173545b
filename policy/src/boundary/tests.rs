//! The boundary's tables: sudo listings, fact gathering on a fake root, and the judgement.
use super::*;

const HEADER: &str = "Matching Defaults entries for a on vm:\n    env_reset, mail_badpass,\n    secure_path=/usr/local/sbin\\:/usr/bin\n\n";

#[test]
fn sudo_listings_parse() {
    type Case = (Option<i32>, &'static str, &'static str, SudoSeen);
    let wrapped = "User a may run the following commands on vm:\n    (ALL) NOPASSWD: /usr/bin/id, /bin/sh,\n        /usr/bin/cat\n    (root) /usr/bin/true\n";
    let cases: Vec<Case> = vec![
        (
            Some(0),
            "User a is not allowed to run sudo on vm.\n",
            "",
            SudoSeen::Listed(vec![]),
        ),
        (
            Some(0),
            "Sorry, user a may not run sudo on vm.\n",
            "",
            SudoSeen::Listed(vec![]),
        ),
        (
            Some(0),
            wrapped,
            "",
            SudoSeen::Listed(vec![
                "(ALL) NOPASSWD: /usr/bin/id, /bin/sh, /usr/bin/cat".into(),
                "(root) /usr/bin/true".into(),
            ]),
        ),
        (
            Some(1),
            "",
            "sudo: unknown user a\n",
            SudoSeen::Unknown("`sudo -l -U` exited 1: sudo: unknown user a".into()),
        ),
        (
            None,
            "",
            "",
            SudoSeen::Unknown("`sudo -l -U` was killed or timed out: no output".into()),
        ),
    ];
    for (code, out, err, want) in cases {
        assert_eq!(parse_sudo_list(code, out, err), want, "{out}{err}");
    }
    // With the Defaults block before it (what sudo prints first).
    assert_eq!(
        parse_sudo_list(
            Some(0),
            &format!("{HEADER}User a may run the following commands on vm:\n    (ALL : ALL) ALL\n"),
            ""
        ),
        SudoSeen::Listed(vec!["(ALL : ALL) ALL".into()])
    );
}

#[test]
fn approvers_match_by_name_and_group() {
    let list: Vec<String> = ["alice", "%ops", "%wheel"].map(String::from).to_vec();
    let g = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert_eq!(approver_entries(&list, "alice", &g(&["alice"])), ["alice"]);
    assert_eq!(
        approver_entries(&list, "bob", &g(&["bob", "ops"])),
        ["%ops"]
    );
    assert!(approver_entries(&list, "bob", &g(&["bob", "opsx"])).is_empty());
    assert!(
        approver_entries(&list, "ops", &g(&["ops2"])).is_empty(),
        "a user named like a group"
    );
}

fn facts(dir: &Path) -> Facts {
    let mut paths = SystemPaths::standard();
    paths.config_dir = dir.join("etc");
    paths.socket = dir.join("none.sock");
    paths.pid_file = dir.join("none.pid");
    Facts {
        paths,
        installed: true,
        access: Ok(AccessSeen {
            requesters: vec!["agent".into()],
            approvers: vec!["alice".into(), "%ops".into()],
            unknown: vec![],
        }),
        agents: vec![AgentSeen {
            name: "agent".into(),
            uid: 1500,
            groups: vec!["agent".into()],
            sudo: SudoSeen::Listed(vec![]),
            sudoers_lines: vec![],
        }],
        files: FilesSeen {
            problems: vec![],
            unchecked: vec![],
            checked: 9,
        },
        broker: BrokerSeen::Answers {
            pid: 42,
            uid: 0,
            proc_uids: Some([0; 4]),
            pid_file: Some(42),
        },
    }
}

fn holds(f: &Facts, area: Area) -> Holds {
    judge(f)
        .into_iter()
        .find(|j| j.area == area)
        .unwrap_or_else(|| panic!("no {area:?}"))
        .holds
}

fn breach_text(h: &Holds) -> String {
    match h {
        Holds::No(b) => b
            .iter()
            .map(|b| format!("{} / {}", b.problem, b.fix))
            .collect::<Vec<_>>()
            .join("\n"),
        other => panic!("expected a breach, got {other:?}"),
    }
}

#[test]
fn a_sound_system_holds_in_every_area() {
    let d = Path::new("/nonexistent-occ");
    for j in judge(&facts(d)) {
        assert!(matches!(j.holds, Holds::Yes(_)), "{j:?}");
    }
}

/// Each breach the doctor must fail on, one line each: what is changed, the area, and
/// words the message must carry.
#[test]
fn every_breach_names_what_is_wrong_and_the_fix() {
    type Change = fn(&mut Facts);
    let cases: &[(&str, Change, Area, &[&str])] = &[
        (
            "sudo rule",
            |f| {
                f.agents[0].sudo = SudoSeen::Listed(vec!["(ALL) NOPASSWD: ALL".into()]);
                f.agents[0].sudoers_lines =
                    vec!["/etc/sudoers.d/x:1: agent ALL=(ALL) NOPASSWD: ALL".into()];
            },
            Area::AgentSudo,
            &["(ALL) NOPASSWD: ALL", "/etc/sudoers.d/x:1", "visudo"],
        ),
        (
            "agent is root",
            |f| f.agents[0].uid = 0,
            Area::AgentSudo,
            &["is root", "unprivileged"],
        ),
        (
            "approver by name",
            |f| {
                if let Ok(a) = f.access.as_mut() {
                    a.approvers.push("agent".into());
                }
            },
            Area::AgentApprover,
            &["agent", "by name", "remove \"agent\""],
        ),
        (
            "approver by group",
            |f| f.agents[0].groups.push("ops".into()),
            Area::AgentApprover,
            &["%ops", "gpasswd -d agent ops"],
        ),
        (
            "approver by primary group",
            |f| f.agents[0].groups = vec!["ops".into()],
            Area::AgentApprover,
            &["%ops", "primary group", "remove \"%ops\""],
        ),
        (
            "file owned by the agent",
            |f| {
                f.files.problems.push(PathProblem {
                    path: "/etc/occ/broker.json".into(),
                    problem: "is owned by agent (uid 1500), not root".into(),
                    fix: "chown root:root /etc/occ/broker.json".into(),
                })
            },
            Area::Files,
            &["/etc/occ/broker.json", "chown root:root"],
        ),
        (
            "nothing answers",
            |f| f.broker = BrokerSeen::Silent("no such socket".into()),
            Area::Broker,
            &[
                "nothing answers",
                "no such socket",
                "systemctl restart occ-broker",
            ],
        ),
        (
            "broker not root",
            |f| {
                f.broker = BrokerSeen::Answers {
                    pid: 42,
                    uid: 1500,
                    proc_uids: Some([1500; 4]),
                    pid_file: Some(42),
                }
            },
            Area::Broker,
            &["not root", "kill 42"],
        ),
        (
            "broker dropped root after listening",
            |f| {
                f.broker = BrokerSeen::Answers {
                    pid: 42,
                    uid: 0,
                    proc_uids: Some([0, 1500, 0, 1500]),
                    pid_file: Some(42),
                }
            },
            Area::Broker,
            &["not root", "uids now"],
        ),
        (
            "pid file names another process",
            |f| {
                f.broker = BrokerSeen::Answers {
                    pid: 42,
                    uid: 0,
                    proc_uids: Some([0; 4]),
                    pid_file: Some(43),
                }
            },
            Area::Broker,
            &["names pid 43", "pid 42"],
        ),
        (
            "broker.json unreadable",
            |f| f.access = Err("/etc/occ/broker.json: bad".into()),
            Area::Access,
            &["broker.json: bad", "occ install"],
        ),
    ];
    let d = Path::new("/nonexistent-occ");
    for (name, change, area, words) in cases {
        let mut f = facts(d);
        change(&mut f);
        let text = breach_text(&holds(&f, *area));
        for w in *words {
            assert!(text.contains(w), "{name}: `{w}` missing from {text}");
        }
        // Only that area breaks.
        for j in judge(&f) {
            if j.area != *area {
                assert!(!matches!(j.holds, Holds::No(_)), "{name}: {j:?}");
            }
        }
    }
}

#[test]
fn not_installed_is_the_only_judgement_and_unknowns_are_not_passes() {
    let d = Path::new("/nonexistent-occ");
    let mut f = facts(d);
    f.installed = false;
    let j = judge(&f);
    assert_eq!(j.len(), 1);
    assert!(breach_text(&j[0].holds).contains("install.sh --system"));

    let mut f = facts(d);
    f.agents[0].sudo = SudoSeen::Unknown("needs root".into());
    assert!(matches!(holds(&f, Area::AgentSudo), Holds::Unknown(w) if w.contains("needs root")));
    let mut f = facts(d);
    f.files.unchecked.push("/etc/occ: Permission denied".into());
    assert!(matches!(holds(&f, Area::Files), Holds::Unknown(_)));
    let mut f = facts(d);
    f.agents.clear();
    assert!(matches!(holds(&f, Area::AgentApprover), Holds::Unknown(_)));
}

#[test]
fn a_file_walk_finds_foreign_owners_loose_modes_and_links() {
    use std::os::unix::fs::PermissionsExt;
    let d = tempfile::tempdir().unwrap();
    let mut paths = SystemPaths::standard();
    let root = d.path().join("etc-occ");
    std::fs::create_dir(&root).unwrap();
    std::fs::write(root.join("ok.json"), "{}").unwrap();
    std::fs::write(root.join("loose.json"), "{}").unwrap();
    std::fs::set_permissions(
        root.join("loose.json"),
        std::fs::Permissions::from_mode(0o666),
    )
    .unwrap();
    std::os::unix::fs::symlink("/etc/passwd", root.join("link")).unwrap();
    paths.config_dir = root.clone();
    paths.state_dir = d.path().join("missing-state");
    paths.log_dir = d.path().join("missing-log");
    paths.run_dir = d.path().join("missing-run");
    paths.installed = vec![];
    let seen = inspect_files(&paths, &[]);
    let text: Vec<String> = seen
        .problems
        .iter()
        .map(|p| format!("{} {}", p.path.display(), p.problem))
        .collect();
    let me = nix::unistd::geteuid().as_raw();
    assert!(
        text.iter()
            .any(|t| t.contains("loose.json is writable by group")),
        "{text:?}"
    );
    assert!(
        text.iter().any(|t| t.contains("link is a symbolic link")),
        "{text:?}"
    );
    // The temp dir's parents (/tmp is sticky and root's) pass; the tree is ours.
    if me == 0 {
        assert!(!text.iter().any(|t| t.contains("ok.json")), "{text:?}");
    } else {
        assert!(
            text.iter().any(|t| t.contains("ok.json is owned by")),
            "{text:?}"
        );
    }
    assert!(seen.checked >= 4, "{seen:?}");
}

/// A directory above the broker's trees that a group can write is a problem only when an
/// agent is in that group; one anyone can write is a problem unless sticky.
#[test]
fn ancestors_are_judged_against_the_agents_groups() {
    use std::os::unix::fs::PermissionsExt;
    let d = tempfile::tempdir().unwrap();
    let anc = d.path().join("anc");
    let root = anc.join("etc-occ");
    std::fs::create_dir_all(&root).unwrap();
    let mut paths = SystemPaths::standard();
    paths.config_dir = root;
    paths.state_dir = d.path().join("missing-state");
    paths.log_dir = d.path().join("missing-log");
    paths.run_dir = d.path().join("missing-run");
    paths.installed = vec![];
    let gid = std::fs::metadata(&anc).unwrap().gid();
    let group = group_label(gid);
    let about_anc = |agent_groups: &[String]| -> Vec<String> {
        inspect_files(&paths, agent_groups)
            .problems
            .into_iter()
            .filter(|p| p.path == anc && p.problem.contains("writable"))
            .map(|p| p.problem)
            .collect()
    };
    let set =
        |mode: u32| std::fs::set_permissions(&anc, std::fs::Permissions::from_mode(mode)).unwrap();
    set(0o775);
    assert!(about_anc(&[]).is_empty(), "no agent in group {group}");
    let hit = about_anc(std::slice::from_ref(&group));
    assert_eq!(hit.len(), 1, "{hit:?}");
    assert!(
        hit[0].contains(&format!("writable by group {group}")),
        "{hit:?}"
    );
    set(0o757);
    assert!(about_anc(&[])[0].contains("writable by others"));
    set(0o1777);
    assert!(about_anc(&[group]).is_empty(), "sticky");
}

#[test]
fn sudoers_lines_naming_the_user_or_its_groups_are_found() {
    let d = tempfile::tempdir().unwrap();
    let mut paths = SystemPaths::standard();
    paths.sudoers = d.path().join("sudoers");
    paths.sudoers_dir = d.path().join("sudoers.d");
    std::fs::create_dir(&paths.sudoers_dir).unwrap();
    std::fs::write(
        &paths.sudoers,
        "# agent is fine\nroot ALL=(ALL) ALL\n%ops ALL=(ALL) ALL\n",
    )
    .unwrap();
    std::fs::write(
        paths.sudoers_dir.join("x"),
        "agent ALL=(ALL) NOPASSWD: /usr/bin/id\nagentx ALL=(ALL) ALL\n",
    )
    .unwrap();
    std::fs::write(
        paths.sudoers_dir.join("skipped.bak"),
        "agent ALL=(ALL) ALL\n",
    )
    .unwrap();
    let got = sudoers_mentions(&paths, "agent", &["agent".into(), "ops".into()]);
    assert_eq!(got.len(), 2, "{got:?}");
    assert!(got[0].ends_with("sudoers:3: %ops ALL=(ALL) ALL"), "{got:?}");
    assert!(got[1].contains("sudoers.d/x:1: agent ALL"), "{got:?}");
}

#[test]
fn a_missing_socket_is_silent() {
    let d = tempfile::tempdir().unwrap();
    let mut paths = SystemPaths::standard();
    paths.socket = d.path().join("broker.sock");
    paths.pid_file = d.path().join("broker.pid");
    assert!(matches!(see_broker(&paths), BrokerSeen::Silent(w) if w.contains("no such socket")));
    // A listener of ours: the kernel names this process and uid.
    let _l = std::os::unix::net::UnixListener::bind(&paths.socket).unwrap();
    match see_broker(&paths) {
        BrokerSeen::Answers { pid, uid, .. } => {
            assert_eq!(pid, std::process::id() as i32);
            assert_eq!(uid, nix::unistd::geteuid().as_raw());
        }
        other => panic!("{other:?}"),
    }
}
