//! Progress of a long bench on stderr: one plain line per step (no terminal
//! control codes, so CI logs read as well as a terminal), saying which step of
//! which round runs and about how long the rest will take.
//!
//! Every round runs the same steps in the same order, so a step's expected time is
//! its mean over the rounds done; a step not timed yet counts as the mean of every
//! step timed so far.

use std::time::{Duration, Instant};

/// Where a run is, and how long its steps took.
#[derive(Debug)]
pub struct Progress {
    rounds: usize,
    /// Per step of a round, the time it took in each round done.
    took: Vec<Vec<Duration>>,
    /// The step running: its round and index, and when it started.
    current: Option<(usize, usize, Instant)>,
}

impl Progress {
    /// A run of `rounds` rounds of `steps` steps each.
    pub fn new(rounds: usize, steps: usize) -> Self {
        Self {
            rounds,
            took: vec![Vec::new(); steps],
            current: None,
        }
    }

    /// Starts step `step` (from 0) of round `round` (from 0), called `what`, ending
    /// the one before; prints its line.
    pub fn start(&mut self, round: usize, step: usize, what: &str) {
        self.finish();
        eprintln!("{}", self.line(round, step, what));
        self.current = Some((round, step, Instant::now()));
    }

    /// Ends the step running, recording its time.
    pub fn finish(&mut self) {
        if let Some((_, step, started)) = self.current.take() {
            self.record(step, started.elapsed());
        }
    }

    /// Records that step `step` took `time` in one round.
    fn record(&mut self, step: usize, time: Duration) {
        if let Some(times) = self.took.get_mut(step) {
            times.push(time);
        }
    }

    /// The line for step `step` of round `round`.
    fn line(&self, round: usize, step: usize, what: &str) -> String {
        let steps = self.took.len();
        let left = match self.time_left(round, step) {
            Some(left) => format!("about {} left", duration(left)),
            None => "time left known after the first step".to_string(),
        };
        format!(
            "bench: round {} of {}, step {} of {}: {what} ({left})",
            round + 1,
            self.rounds,
            step + 1,
            steps
        )
    }

    /// The expected time of this step and every one after it, if any step has
    /// been timed.
    fn time_left(&self, round: usize, step: usize) -> Option<Duration> {
        let all: Vec<Duration> = self.took.iter().flatten().copied().collect();
        let overall = mean(&all)?;
        let expected = |index: usize| mean(&self.took[index]).unwrap_or(overall);
        let this_round: Duration = (step..self.took.len()).map(expected).sum();
        let a_round: Duration = (0..self.took.len()).map(expected).sum();
        let later_rounds = self.rounds.saturating_sub(round + 1) as u32;
        Some(this_round + a_round * later_rounds)
    }
}

fn mean(times: &[Duration]) -> Option<Duration> {
    let count = u32::try_from(times.len()).ok().filter(|count| *count > 0)?;
    Some(times.iter().sum::<Duration>() / count)
}

/// `40 s`, `12 min`, `1 h 05 min`.
fn duration(time: Duration) -> String {
    let seconds = time.as_secs_f64().round() as u64;
    match seconds {
        0..90 => format!("{seconds} s"),
        90..3600 => format!("{} min", (seconds + 30) / 60),
        _ => {
            let minutes = (seconds + 30) / 60;
            format!("{} h {:02} min", minutes / 60, minutes % 60)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn lines_say_where_the_run_is_and_what_is_left() {
        let mut progress = Progress::new(3, 2);
        assert_eq!(
            progress.line(0, 0, "Aerie, 1 vCPU, wall-clock boot"),
            "bench: round 1 of 3, step 1 of 2: Aerie, 1 vCPU, wall-clock boot (time left \
             known after the first step)"
        );
        // The first step took 10 s: the other one is guessed alike.
        progress.record(0, 10 * S);
        assert_eq!(
            progress.time_left(0, 1),
            Some(50 * S),
            "1 + 2 × 2 steps of 10 s"
        );
        progress.record(1, 30 * S);
        // Round 2: each step by its own time.
        assert_eq!(
            progress.time_left(1, 0),
            Some(80 * S),
            "40 s this round, 40 s the last"
        );
        assert_eq!(progress.time_left(1, 1), Some(70 * S));
        progress.record(0, 20 * S);
        assert_eq!(
            progress.time_left(1, 1),
            Some(30 * S + 45 * S),
            "means: 15 s and 30 s"
        );
        assert_eq!(
            progress.line(2, 1, "QEMU, snapshot (idle)"),
            "bench: round 3 of 3, step 2 of 2: QEMU, snapshot (idle) (about 30 s left)"
        );
    }

    #[test]
    fn starting_a_step_times_the_one_before() {
        let mut progress = Progress::new(1, 2);
        progress.start(0, 0, "first");
        progress.start(0, 1, "second");
        assert_eq!(progress.took[0].len(), 1);
        assert!(progress.took[1].is_empty());
        progress.finish();
        assert_eq!(progress.took[1].len(), 1);
        progress.finish();
        assert_eq!(progress.took[1].len(), 1, "finishing twice records once");
    }

    #[test]
    fn durations_read_at_a_glance() {
        assert_eq!(duration(Duration::from_millis(400)), "0 s");
        assert_eq!(duration(89 * S), "89 s");
        assert_eq!(duration(90 * S), "2 min");
        assert_eq!(duration(12 * 60 * S), "12 min");
        assert_eq!(duration(3599 * S), "60 min");
        assert_eq!(duration(3600 * S + 5 * 60 * S), "1 h 05 min");
    }
}
