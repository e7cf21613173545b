//! The judgement: what the gathered [`Facts`] mean for each part of the boundary. Pure: it
//! reads nothing and runs nothing.

use super::*;

/// The parts of the boundary, each judged on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Area {
    /// System mode is installed (`/etc/occ`).
    Installed,
    /// broker.json names requesters and approvers.
    Access,
    /// No requester has sudo rights.
    AgentSudo,
    /// No requester is an approver.
    AgentApprover,
    /// The broker's files are root's alone.
    Files,
    /// The broker answering the socket is root.
    Broker,
}

impl Area {
    /// The stable name doctor and scan print.
    pub fn name(self) -> &'static str {
        match self {
            Area::Installed => "system_installed",
            Area::Access => "system_access",
            Area::AgentSudo => "agent_sudo",
            Area::AgentApprover => "agent_approver",
            Area::Files => "system_files",
            Area::Broker => "system_broker",
        }
    }
}

/// One way the boundary does not hold, naming the file, user or rule and the fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Breach {
    /// What was found.
    pub problem: String,
    /// What to do.
    pub fix: String,
}

/// How one area stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Holds {
    /// It holds: what was seen.
    Yes(String),
    /// It does not.
    No(Vec<Breach>),
    /// It could not be judged: why.
    Unknown(String),
}

/// One area's judgement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Judgement {
    /// Which area.
    pub area: Area,
    /// How it stands.
    pub holds: Holds,
}

/// Judges the facts, one judgement per area, in [`Area`] order. When system mode is not
/// installed that is the only judgement.
pub fn judge(f: &Facts) -> Vec<Judgement> {
    let cfg = f.paths.config_dir.display();
    if !f.installed {
        return vec![Judgement {
            area: Area::Installed,
            holds: Holds::No(vec![Breach {
                problem: format!("system mode is not installed ({cfg} is missing)"),
                fix: "sudo ./install/install.sh --system --agent USER --approver USER".into(),
            }]),
        }];
    }
    let mut out = vec![Judgement {
        area: Area::Installed,
        holds: Holds::Yes(format!("{cfg} exists")),
    }];
    let broker_json = f.paths.config_dir.join(BROKER_CONFIG);
    let reload = "then reload the broker: systemctl reload occ-broker, or kill -HUP $(cat /run/occ/broker.pid)";
    let access = match &f.access {
        Err(e) => Holds::No(vec![Breach {
            problem: e.clone(),
            fix: format!(
                "restore {} (root-owned, mode 600) with requesters and approvers; `occ install \
                 --system` writes it",
                broker_json.display()
            ),
        }]),
        Ok(a) if a.requesters.is_empty() => Holds::Unknown(format!(
            "{} names no requesters, so no agent can use the system broker and there is no \
             agent to judge",
            broker_json.display()
        )),
        Ok(a) if a.approvers.is_empty() => Holds::Unknown(format!(
            "{} names no approvers: only root can approve",
            broker_json.display()
        )),
        Ok(a) => {
            let mut s = format!("requesters {:?}, approvers {:?}", a.requesters, a.approvers);
            if !a.unknown.is_empty() {
                s.push_str(&format!(" ({:?} name no user or group here)", a.unknown));
            }
            Holds::Yes(s)
        }
    };
    out.push(Judgement {
        area: Area::Access,
        holds: access,
    });
    let Ok(access) = &f.access else {
        for area in [Area::AgentSudo, Area::AgentApprover] {
            out.push(Judgement {
                area,
                holds: Holds::Unknown(
                    "broker.json could not be read, so the agents are unknown".into(),
                ),
            });
        }
        out.push(files_judgement(f));
        out.push(broker_judgement(f));
        return out;
    };
    let names: Vec<&str> = f.agents.iter().map(|a| a.name.as_str()).collect();

    // The agents' sudo rights.
    let mut breaches = Vec::new();
    let mut unknown = Vec::new();
    let mut none_sudo = false;
    for a in &f.agents {
        if a.uid == 0 {
            breaches.push(Breach {
                problem: format!("the requester {} is root", a.name),
                fix: format!(
                    "run the agent as an unprivileged user and list that user in {}'s \
                     requesters instead",
                    broker_json.display()
                ),
            });
            continue;
        }
        match &a.sudo {
            SudoSeen::Listed(rules) if !rules.is_empty() => {
                let lines = if a.sudoers_lines.is_empty() {
                    String::new()
                } else {
                    format!(" (named in {})", a.sudoers_lines.join("; "))
                };
                breaches.push(Breach {
                    problem: format!(
                        "`sudo -l -U {}` says it may run: {}{lines}",
                        a.name,
                        rules.join(" | ")
                    ),
                    fix: format!(
                        "remove every sudoers rule that gives {} (or a group it is in) sudo \
                         rights with visudo, until `sudo -l -U {}` says it is not allowed to run \
                         sudo; it asks occ instead",
                        a.name, a.name
                    ),
                });
            }
            SudoSeen::Listed(_) => {}
            SudoSeen::NotInstalled => none_sudo = true,
            SudoSeen::Unknown(why) => unknown.push(format!("{}: {why}", a.name)),
        }
    }
    out.push(Judgement {
        area: Area::AgentSudo,
        holds: if !breaches.is_empty() {
            Holds::No(breaches)
        } else if !unknown.is_empty() {
            Holds::Unknown(format!(
                "cannot list the agents' sudo rights ({}); run as root",
                unknown.join("; ")
            ))
        } else if f.agents.is_empty() {
            Holds::Unknown("no requester is a user on this host".into())
        } else if none_sudo {
            Holds::Yes(format!(
                "no sudo on this host, so {names:?} have no sudo rights"
            ))
        } else {
            Holds::Yes(format!("`sudo -l -U` lists no rules for {names:?}"))
        },
    });

    // The agents as approvers.
    let mut breaches = Vec::new();
    for a in &f.agents {
        for entry in approver_entries(&access.approvers, &a.name, &a.groups) {
            let primary = a.groups.first().map(String::as_str);
            let fix = match entry.strip_prefix('%') {
                Some(g) if Some(g) == primary => format!(
                    "remove \"{entry}\" from approvers in {} ({g} is {}'s primary group); \
                     {reload}",
                    broker_json.display(),
                    a.name
                ),
                Some(g) => format!(
                    "take {} out of group {g} (gpasswd -d {} {g}), or remove \"{entry}\" from \
                     approvers in {}; {reload}",
                    a.name,
                    a.name,
                    broker_json.display()
                ),
                None => format!(
                    "remove \"{entry}\" from approvers in {}; {reload}",
                    broker_json.display()
                ),
            };
            let how = if entry.starts_with('%') {
                format!("through its group (approvers entry \"{entry}\")")
            } else {
                format!("by name (approvers entry \"{entry}\")")
            };
            breaches.push(Breach {
                problem: format!(
                    "the requester {} is also an approver {how}; approvers must be people \
                     other than the agent",
                    a.name
                ),
                fix,
            });
        }
    }
    out.push(Judgement {
        area: Area::AgentApprover,
        holds: if !breaches.is_empty() {
            Holds::No(breaches)
        } else if f.agents.is_empty() {
            Holds::Unknown("no requester is a user on this host".into())
        } else {
            Holds::Yes(format!(
                "no requester of {names:?} is among the approvers {:?}",
                access.approvers
            ))
        },
    });
    out.push(files_judgement(f));
    out.push(broker_judgement(f));
    out
}

fn files_judgement(f: &Facts) -> Judgement {
    let files = &f.files;
    let holds = if !files.problems.is_empty() {
        Holds::No(
            files
                .problems
                .iter()
                .map(|p| Breach {
                    problem: format!("{} {}", p.path.display(), p.problem),
                    fix: p.fix.clone(),
                })
                .collect(),
        )
    } else if !files.unchecked.is_empty() {
        Holds::Unknown(format!(
            "cannot inspect {}; run as root",
            files.unchecked.join("; ")
        ))
    } else {
        let trees: Vec<String> = f
            .paths
            .trees()
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        Holds::Yes(format!(
            "{} paths under {}, the installed binaries and the directories above them are \
             root's and not writable by group or others",
            files.checked,
            trees.join(", ")
        ))
    };
    Judgement {
        area: Area::Files,
        holds,
    }
}

fn broker_judgement(f: &Facts) -> Judgement {
    let sock = f.paths.socket.display();
    let start = "systemctl restart occ-broker, or where there is no systemd: occ broker --system";
    let holds = match &f.broker {
        BrokerSeen::Silent(why) => Holds::No(vec![Breach {
            problem: format!("nothing answers on {sock} ({why})"),
            fix: format!("start the root service: {start}; see /var/log/occ/broker.log or journalctl -u occ-broker"),
        }]),
        BrokerSeen::Answers {
            pid,
            uid,
            proc_uids,
            pid_file,
        } => {
            let mut b = Vec::new();
            let now_root = proc_uids.is_none_or(|u| u.iter().all(|x| *x == 0));
            if *uid != 0 || !now_root {
                let ids = proc_uids
                    .map(|u| format!(", uids now {u:?}"))
                    .unwrap_or_default();
                b.push(Breach {
                    problem: format!(
                        "the process answering {sock} (pid {pid}) is not root: it listened as {}{ids}",
                        user_label(*uid)
                    ),
                    fix: format!("stop it (kill {pid}) and start the root service: {start}"),
                });
            }
            match pid_file {
                Some(p) if i64::from(*p) != i64::from(*pid) && *pid > 0 => b.push(Breach {
                    problem: format!(
                        "{} names pid {p}, but {sock} is answered by pid {pid}",
                        f.paths.pid_file.display()
                    ),
                    fix: format!("find out what runs as pid {pid} and {p}, stop both, then: {start}"),
                }),
                _ => {}
            }
            if b.is_empty() {
                Holds::Yes(format!("the broker answering {sock} is root (pid {pid})"))
            } else {
                Holds::No(b)
            }
        }
    };
    Judgement {
        area: Area::Broker,
        holds,
    }
}
