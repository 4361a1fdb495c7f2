//! The process groups a hub started, recorded on disk, so that the next start kills what a
//! `kill -9` of the hub left running (a stdio server's grandchildren never see the parent
//! death signal); and the Linux child subreaper, so that processes which leave their server's
//! group (double fork, `setsid`) re-parent to the hub, are reaped, and are recorded too.
//!
//! The record is a small text file, rewritten atomically (temporary file, then rename) on every
//! change: a first line `hub <pid> <start>`, then one line per group, `<pgid> <start> <sid>
//! <server>`. `start` is the process start time from `/proc/<pid>/stat` (clock ticks since
//! boot), so a recycled pid is never taken for a recorded one: a group is killed only if its
//! leader is the recorded process (same pid, same start time) or, once the leader is gone, if
//! every member started no earlier than the leader did and is in the recorded session.
//!
//! One record per process: [`ProcessGroups::install`] makes every stdio spawn of the process
//! record its group there, like the subreaper flag, which is per process too.

use std::collections::{BTreeMap, HashSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

/// Name recorded for a process that left its server's group and re-parented to the hub.
const ADOPTED: &str = "(adopted orphan)";

static INSTALLED: OnceLock<Arc<ProcessGroups>> = OnceLock::new();

/// One recorded process group.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Group {
    start: u64,
    sid: i32,
    name: String,
}

/// The process groups this hub started, mirrored to a file.
#[derive(Debug)]
pub struct ProcessGroups {
    path: PathBuf,
    hub: (i32, u64),
    groups: Mutex<BTreeMap<i32, Group>>,
}

/// What `/proc/<pid>/stat` says about one process.
#[derive(Debug, Clone, Copy)]
struct Stat {
    pid: i32,
    state: char,
    ppid: i32,
    pgrp: i32,
    sid: i32,
    start: u64,
}

fn stat(pid: i32) -> Option<Stat> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses: fields follow the last ')'.
    let rest = &text[text.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    Some(Stat {
        pid,
        state: f.first()?.chars().next()?,
        ppid: f.get(1)?.parse().ok()?,
        pgrp: f.get(2)?.parse().ok()?,
        sid: f.get(3)?.parse().ok()?,
        start: f.get(19)?.parse().ok()?,
    })
}

fn all_processes() -> Vec<Stat> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(stat)
        .collect()
}

/// The live members of recorded group `pgid`, if the group is still the recorded one.
fn members_of(pgid: i32, group: &Group, procs: &[Stat]) -> Vec<i32> {
    let members: Vec<&Stat> = procs
        .iter()
        .filter(|p| p.pgrp == pgid && p.state != 'Z')
        .collect();
    let leader = procs.iter().find(|p| p.pid == pgid);
    let ours = match leader {
        // The leader lives (or is a zombie): it must be the very process recorded.
        Some(l) => l.start == group.start,
        None => members
            .iter()
            .all(|m| m.start >= group.start && m.sid == group.sid),
    };
    if ours {
        members.iter().map(|m| m.pid).collect()
    } else {
        Vec::new()
    }
}

impl ProcessGroups {
    /// Takes over the record at `path`: every group a previous hub recorded there and left
    /// running is killed (SIGKILL to the group, one log line each), unless that hub still runs;
    /// then the file is rewritten for this process, with no group yet.
    pub fn open(path: &Path) -> std::io::Result<Arc<ProcessGroups>> {
        let me = std::process::id() as i32;
        let hub = (me, stat(me).map_or(0, |s| s.start));
        if let Ok(text) = std::fs::read_to_string(path) {
            kill_leftovers(path, &text, hub);
        }
        Self::create(path, hub)
    }

    /// For hubs without a data directory (`switchboard stdio`, several at once): this
    /// process's record is `dir/stdio-<pid>.pgroups`; the records of such hubs that are gone
    /// are handled as [`ProcessGroups::open`] does, then removed.
    pub fn open_in(dir: &Path) -> std::io::Result<Arc<ProcessGroups>> {
        std::fs::create_dir_all(dir)?;
        let me = std::process::id() as i32;
        let hub = (me, stat(me).map_or(0, |s| s.start));
        for entry in std::fs::read_dir(dir)?.filter_map(Result::ok) {
            let path = entry.path();
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if !(name.starts_with("stdio-") && name.ends_with(".pgroups")) {
                continue;
            }
            if let Ok(text) = std::fs::read_to_string(&path)
                && !kill_leftovers(&path, &text, hub)
            {
                let _ = std::fs::remove_file(&path);
            }
        }
        Self::create(&dir.join(format!("stdio-{me}.pgroups")), hub)
    }

    fn create(path: &Path, hub: (i32, u64)) -> std::io::Result<Arc<ProcessGroups>> {
        let this = Arc::new(ProcessGroups {
            path: path.to_path_buf(),
            hub,
            groups: Mutex::new(BTreeMap::new()),
        });
        this.save()?;
        Ok(this)
    }

    /// Makes this the record every stdio server of this process is written to, and starts
    /// watching the hub's children: zombies of adopted processes are reaped, adopted processes
    /// are recorded, groups with no process left are dropped. The first install wins.
    pub fn install(self: &Arc<Self>) {
        if INSTALLED.set(self.clone()).is_ok() {
            tokio::spawn(watch(self.clone()));
        }
    }

    /// The installed record, if any.
    pub(crate) fn installed() -> Option<&'static Arc<ProcessGroups>> {
        INSTALLED.get()
    }

    /// Records the group led by the just-spawned process `pid`, for server `name`.
    pub(crate) fn record(&self, pid: u32, name: &str) {
        let Some(s) = stat(pid as i32) else { return };
        self.insert(
            s.pgrp,
            Group {
                start: s.start,
                sid: s.sid,
                name: name.to_string(),
            },
        );
    }

    fn insert(&self, pgid: i32, group: Group) {
        let mut groups = self.groups.lock().expect("process groups lock");
        if groups.get(&pgid) == Some(&group) {
            return;
        }
        groups.insert(pgid, group);
        drop(groups);
        self.save_logged();
    }

    /// SIGKILLs every recorded group still running (the servers were stopped already; what is
    /// left are adopted processes and stray group members), and empties the record.
    pub fn stop_all(&self) {
        let groups = std::mem::take(&mut *self.groups.lock().expect("process groups lock"));
        let procs = all_processes();
        for (pgid, group) in &groups {
            if !members_of(*pgid, group, &procs).is_empty() {
                let _ = killpg(Pid::from_raw(*pgid), Signal::SIGKILL);
            }
        }
        self.save_logged();
    }

    /// [`ProcessGroups::stop_all`], then removes the record (a clean exit).
    pub fn stop_all_and_remove(&self) {
        self.stop_all();
        let _ = std::fs::remove_file(&self.path);
    }

    fn save_logged(&self) {
        if let Err(e) = self.save() {
            tracing::warn!(message = "Cannot write the process-group record.", file = %self.path.display(), error = %e);
        }
    }

    fn save(&self) -> std::io::Result<()> {
        let mut text = format!("hub {} {}\n", self.hub.0, self.hub.1);
        for (pgid, g) in self.groups.lock().expect("process groups lock").iter() {
            text.push_str(&format!("{pgid} {} {} {}\n", g.start, g.sid, g.name));
        }
        let tmp = self.path.with_extension("tmp");
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
        std::fs::rename(&tmp, &self.path)
    }
}

/// Kills the groups recorded in `text` (the file at `path`) by a hub that is gone; true when
/// that hub still runs (nothing is killed then).
fn kill_leftovers(path: &Path, text: &str, me: (i32, u64)) -> bool {
    let mut lines = text.lines();
    let hub: Vec<u64> = lines
        .next()
        .and_then(|l| l.strip_prefix("hub "))
        .map(|l| {
            l.split_whitespace()
                .filter_map(|x| x.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    if let [pid, start] = hub[..]
        && (pid as i32, start) != me
        && stat(pid as i32).is_some_and(|s| s.start == start)
    {
        if path.file_name().is_some_and(|n| n == "pgroups") {
            tracing::warn!(message = "Another hub still runs on this data directory; its process groups are left alone.", file = %path.display(), pid);
        }
        return true;
    }
    let procs = all_processes();
    for line in lines {
        let mut f = line.splitn(4, ' ');
        let (Some(pgid), Some(start), Some(sid), Some(name)) = (
            f.next().and_then(|x| x.parse::<i32>().ok()),
            f.next().and_then(|x| x.parse().ok()),
            f.next().and_then(|x| x.parse().ok()),
            f.next(),
        ) else {
            continue;
        };
        if pgid <= 1 {
            continue;
        }
        let group = Group {
            start,
            sid,
            name: name.to_string(),
        };
        let members = members_of(pgid, &group, &procs);
        if members.is_empty() {
            continue;
        }
        match killpg(Pid::from_raw(pgid), Signal::SIGKILL) {
            Ok(()) => tracing::warn!(
                message = "Killed a process group a previous run of the hub left behind.",
                server = %name,
                pgid,
                processes = members.len()
            ),
            Err(e) => tracing::warn!(
                message = "Cannot kill a process group a previous run of the hub left behind.",
                server = %name,
                pgid,
                error = %e
            ),
        }
    }
    false
}

/// Once a second (and on SIGCHLD): reap adopted zombies, record adopted processes, drop
/// groups with nobody left.
async fn watch(groups: Arc<ProcessGroups>) {
    use tokio::signal::unix::{SignalKind, signal};
    let mut child = signal(SignalKind::child()).ok();
    let me = groups.hub.0;
    let my_group = stat(me).map_or(0, |s| s.pgrp);
    // Zombies seen at the last scan: reaped at this one if still there. The hub's own stdio
    // servers are reaped by their waiting tasks at once, so two scans apart means adopted.
    let mut zombies: HashSet<i32> = HashSet::new();
    loop {
        match child.as_mut() {
            Some(sig) => {
                let _ = tokio::time::timeout(Duration::from_secs(1), sig.recv()).await;
                // Let the runtime reap its own children first.
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            None => tokio::time::sleep(Duration::from_secs(1)).await,
        }
        let procs = all_processes();
        let recorded = groups.groups.lock().expect("process groups lock").clone();
        let mut seen = HashSet::new();
        for p in procs.iter().filter(|p| p.ppid == me) {
            if p.state == 'Z' {
                if zombies.contains(&p.pid) && !recorded.contains_key(&p.pid) {
                    let _ = nix::sys::wait::waitpid(
                        Pid::from_raw(p.pid),
                        Some(nix::sys::wait::WaitPidFlag::WNOHANG),
                    );
                } else {
                    seen.insert(p.pid);
                }
            } else if p.pgrp != my_group && p.pgrp > 1 && !recorded.contains_key(&p.pgrp) {
                let start = procs
                    .iter()
                    .find(|l| l.pid == p.pgrp)
                    .map_or(p.start, |l| l.start);
                tracing::info!(
                    message = "A process left its server's group and was adopted by the hub; it is recorded and stopped with the hub.",
                    pid = p.pid,
                    pgid = p.pgrp
                );
                groups.insert(
                    p.pgrp,
                    Group {
                        start,
                        sid: p.sid,
                        name: ADOPTED.into(),
                    },
                );
            }
        }
        zombies = seen;
        let empty: Vec<i32> = recorded
            .iter()
            .filter(|(pgid, g)| members_of(**pgid, g, &procs).is_empty())
            .map(|(pgid, _)| *pgid)
            .collect();
        if !empty.is_empty() {
            let mut current = groups.groups.lock().expect("process groups lock");
            for pgid in &empty {
                current.remove(pgid);
            }
            drop(current);
            groups.save_logged();
        }
    }
}

/// Makes this process the child subreaper of its descendants (Linux): an orphan re-parents to
/// the hub instead of init, so it is reaped and recorded by the installed [`ProcessGroups`].
pub fn become_subreaper() {
    if let Err(e) = nix::sys::prctl::set_child_subreaper(true) {
        tracing::warn!(message = "Cannot become the child subreaper; orphans of stdio servers re-parent to init.", error = %e);
    }
}
