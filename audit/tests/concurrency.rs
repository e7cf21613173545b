//! 16 separate OS processes append 500 records each to one log: 8,000 records, seq contiguous,
//! the chain intact. Half the children use `fsync=always`, half group commit.

use occ_audit::canon::{Checker, Field};

use crate::child;
use crate::util::Log;

#[test]
fn sixteen_processes_append_8000_contiguous_records() {
    let log = Log::new();
    let procs: Vec<_> = (0..16)
        .map(|i| {
            let mode = if i % 2 == 0 { "always" } else { "batch" };
            child::command(&format!("append:500:{mode}:{}", log.path.display()))
                .stdout(std::process::Stdio::null())
                .spawn()
                .expect("spawn child")
        })
        .collect();
    for mut p in procs {
        let st = p.wait().expect("wait");
        assert!(st.success(), "a child failed: {st}");
    }
    let r = log.verify();
    assert!(r.intact(), "{:?}", &r.breaks[..r.breaks.len().min(5)]);
    assert_eq!(r.events, 8000);

    let mut checker = Checker::new();
    let mut pids = std::collections::BTreeSet::new();
    for (i, line) in crate::util::lines(&log.path).iter().enumerate() {
        let rec = checker.check(&line[..line.len() - 1]).expect("canonical");
        assert_eq!(rec.field("seq").and_then(|f| f.as_u64()), Some(i as u64));
        if let Some(Field::Int(p)) = rec.field("child_pid") {
            pids.insert(p.to_vec());
        }
    }
    assert_eq!(pids.len(), 16, "every child wrote");
}
