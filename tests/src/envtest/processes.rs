//! etcd and kube-apiserver as children that cannot outlive the test run: each is spawned by one
//! thread that lives as long as the process, with `PR_SET_PDEATHSIG` = SIGKILL. The kernel sends
//! that signal when the spawning *thread* ends, which is why no test thread spawns them (a test's
//! thread ends with the test); the keeper thread ends only with the process, however it ends
//! (normal exit, panic, SIGKILL of the test binary). kube-apiserver ignores SIGTERM while it
//! drains, so SIGKILL is also the right signal.

use std::fs::File;
use std::io;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Sender, channel};
use std::sync::{Mutex, OnceLock};

/// A spawn request for the keeper thread, and where to send the child's pid.
type Request = (Command, Sender<io::Result<u32>>);

/// Starts `program` with `args`, stdout and stderr appended to `log`, as a child of the keeper
/// thread; returns its pid.
pub(crate) fn spawn_for_the_run(program: &Path, args: &[String], log: &Path) -> io::Result<u32> {
    let out = File::create(log)?;
    let mut command = Command::new(program);
    command
        .args(args)
        .stdin(Stdio::null())
        .stdout(out.try_clone()?)
        .stderr(out);
    let parent = std::process::id() as libc::pid_t;
    // SAFETY: the closure runs in the forked child before exec and calls only async-signal-safe
    // functions (prctl, getppid, _exit).
    unsafe {
        command.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(io::Error::last_os_error());
            }
            // The test process may have died between fork and prctl: then nobody would kill us.
            if libc::getppid() != parent {
                libc::_exit(1);
            }
            Ok(())
        });
    }
    let (reply, answer) = channel();
    keeper()
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .send((command, reply))
        .map_err(|_| io::Error::other("the process keeper thread is gone"))?;
    answer
        .recv()
        .map_err(|_| io::Error::other("the process keeper thread did not answer"))?
}

/// The channel to the keeper thread, started on first use.
fn keeper() -> &'static Mutex<Sender<Request>> {
    static KEEPER: OnceLock<Mutex<Sender<Request>>> = OnceLock::new();
    KEEPER.get_or_init(|| {
        let (requests, incoming) = channel::<Request>();
        std::thread::Builder::new()
            .name("envtest-process-keeper".into())
            .spawn(move || {
                // The children stay owned here (and reaped if they exit) for the whole run; the
                // sender lives in a static, so this loop never ends before the process does.
                let mut children: Vec<Child> = Vec::new();
                for (mut command, reply) in incoming {
                    let spawned = command.spawn().map(|child| {
                        let pid = child.id();
                        children.push(child);
                        pid
                    });
                    children.retain_mut(|child| matches!(child.try_wait(), Ok(None)));
                    let _ = reply.send(spawned);
                }
            })
            .expect("start the envtest process keeper thread");
        Mutex::new(requests)
    })
}

/// Whether process `pid` still runs (a zombie of ours counts as gone once reaped).
pub(crate) fn is_alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
        && std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|stat| !stat.contains(") Z "))
            .unwrap_or(false)
}
