//! Evaluations of expressions that call a builtin of unbounded step
//! ([`super::UNBOUNDED_STEPS`]) run on threads of their own, so the caller waits no
//! longer than a deadline. The engine checks its time limit between steps, but one step
//! (a `$pad` to a billion characters, a `$replace` of a long string by a long string)
//! runs to its end; past the deadline the caller gets [`MappingError::Abandoned`] and
//! carries on, and the thread finishes the step, sees its time limit, and returns to the pool.
//!
//! Threads are made as callers need them and kept; each has a large stack, so the
//! engine's own recursion never comes near its end. At most [`MAX_ABANDONED`]
//! abandoned evaluations may be running at once: past that, evaluations are refused
//! ([`MappingError::Busy`]) instead of piling up threads that compete for the CPU.

use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, LazyLock, Mutex, PoisonError};
use std::time::{Duration, Instant};

use super::MappingError;

/// Abandoned evaluations allowed to run at once.
pub const MAX_ABANDONED: usize = 4;

/// Stack of an evaluation thread.
const STACK_BYTES: usize = 16 << 20;

type Job = Box<dyn FnOnce() + Send>;

struct Pool {
    /// Each idle thread's job queue; a thread puts itself back after every job.
    idle: Mutex<Vec<mpsc::Sender<Job>>>,
    /// Evaluations whose caller stopped waiting and that have not ended yet.
    abandoned: AtomicUsize,
}

static POOL: LazyLock<Pool> = LazyLock::new(|| Pool {
    idle: Mutex::new(Vec::new()),
    abandoned: AtomicUsize::new(0),
});

const RUNNING: u8 = 0;
const DONE: u8 = 1;
const ABANDONED: u8 = 2;

/// Run `work` on an evaluation thread; its answer, or an error at `deadline`.
pub(super) fn run<T: Send + 'static>(
    deadline: Duration,
    work: impl FnOnce() -> Result<T, MappingError> + Send + 'static,
) -> Result<T, MappingError> {
    let stuck = POOL.abandoned.load(Ordering::Relaxed);
    if stuck >= MAX_ABANDONED {
        return Err(MappingError::Busy(stuck));
    }
    let started = Instant::now();
    let (reply, answer) = mpsc::sync_channel(1);
    // Whoever moves it from RUNNING first decides: the thread (DONE) or the caller
    // giving up (ABANDONED), in which case the thread uncounts itself when it ends.
    let state = Arc::new(AtomicU8::new(RUNNING));
    let thread_state = state.clone();
    dispatch(Box::new(move || {
        let result = work();
        if thread_state
            .compare_exchange(RUNNING, DONE, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            POOL.abandoned.fetch_sub(1, Ordering::Relaxed);
            tracing::warn!("An abandoned JSONata evaluation has ended.");
        }
        let _ = reply.send(result);
    }))?;
    match answer.recv_timeout(deadline) {
        Ok(result) => result,
        Err(RecvTimeoutError::Timeout) => {
            if state
                .compare_exchange(RUNNING, ABANDONED, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
            {
                let running = POOL.abandoned.fetch_add(1, Ordering::Relaxed) + 1;
                tracing::error!(
                    running,
                    "A JSONata evaluation ran past its deadline in one uninterruptible step; its event is dead-lettered and the thread left to finish. Check the mapping."
                );
                return Err(MappingError::Abandoned(started.elapsed().as_millis()));
            }
            // It ended just as the deadline passed: its answer is on its way.
            answer.recv().unwrap_or_else(|_| Err(thread_died()))
        }
        Err(RecvTimeoutError::Disconnected) => Err(thread_died()),
    }
}

fn thread_died() -> MappingError {
    MappingError::Panicked("the evaluation thread ended without an answer".into())
}

/// Hand `job` to an idle thread, or to a new one.
fn dispatch(mut job: Job) -> Result<(), MappingError> {
    loop {
        let idle = POOL.idle.lock().unwrap_or_else(PoisonError::into_inner).pop();
        let Some(thread) = idle else { break };
        match thread.send(job) {
            Ok(()) => return Ok(()),
            // That thread is gone; try the next.
            Err(mpsc::SendError(back)) => job = back,
        }
    }
    let (queue, jobs) = mpsc::channel::<Job>();
    queue.send(job).expect("the receiver is alive");
    std::thread::Builder::new()
        .name("jsonata".into())
        .stack_size(STACK_BYTES)
        .spawn(move || {
            for job in jobs.iter() {
                job();
                POOL.idle
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push(queue.clone());
            }
        })
        .map(|_| ())
        .map_err(|e| MappingError::Panicked(format!("no thread for the evaluation: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_come_back_and_slow_work_is_abandoned_at_the_deadline() {
        assert_eq!(run(Duration::from_secs(5), || Ok(42)), Ok(42));
        let (release, wait) = mpsc::channel::<()>();
        let started = Instant::now();
        let r = run(Duration::from_millis(100), move || {
            let _ = wait.recv_timeout(Duration::from_secs(30));
            Ok(())
        });
        assert!(matches!(r, Err(MappingError::Abandoned(_))), "{r:?}");
        assert!(started.elapsed() < Duration::from_secs(5));
        // Released, the thread ends its job and uncounts itself.
        release.send(()).unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while POOL.abandoned.load(Ordering::Relaxed) > 0 {
            assert!(Instant::now() < deadline, "the abandoned evaluation never ended");
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(run(Duration::from_secs(5), || Ok("again")), Ok("again"));
    }
}
