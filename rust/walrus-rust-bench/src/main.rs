//! One case of `walrus-harness bench storage` on the walrus-rust crate.
//!
//! Usage: walrus-rust-bench DIR FSYNC WRITERS TOPICS SECONDS SEED
//! (FSYNC: none, each or 1000ms). Writer threads append payloads of 500-1024 pseudo-random bytes,
//! writer w to topic w mod TOPICS, one call per record, until the time is up; one JSON line on
//! stdout: writes, bytes, elapsed seconds and the p99 call latency.

use std::env;
use std::process::ExitCode;
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use walrus_rust::{FsyncSchedule, ReadConsistency, Walrus};

const PAYLOAD_MIN: usize = 500;
const PAYLOAD_MAX: usize = 1024;
const POOL: usize = 4096;

/// xorshift64*: reproducible payloads without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

fn pool(seed: u64, writer: u64) -> Vec<Vec<u8>> {
    let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ (writer + 1));
    (0..POOL)
        .map(|_| {
            let len = PAYLOAD_MIN + (rng.next() as usize) % (PAYLOAD_MAX - PAYLOAD_MIN + 1);
            (0..len).map(|_| rng.next() as u8).collect()
        })
        .collect()
}

fn schedule(mode: &str) -> Option<FsyncSchedule> {
    match mode {
        "none" => Some(FsyncSchedule::NoFsync),
        "each" => Some(FsyncSchedule::SyncEach),
        "1000ms" => Some(FsyncSchedule::Milliseconds(1000)),
        _ => None,
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = env::args().collect();
    if args.len() != 7 {
        eprintln!("usage: walrus-rust-bench DIR none|each|1000ms WRITERS TOPICS SECONDS SEED");
        return ExitCode::from(2);
    }
    let (Some(mode), Ok(writers), Ok(topics), Ok(seconds), Ok(seed)) = (
        schedule(&args[2]),
        args[3].parse::<usize>(),
        args[4].parse::<usize>(),
        args[5].parse::<f64>(),
        args[6].parse::<u64>(),
    ) else {
        eprintln!("walrus-rust-bench: bad arguments {:?}", &args[1..]);
        return ExitCode::from(2);
    };
    // SAFETY of intent: the crate reads its data directory from this variable; set before any
    // thread exists.
    unsafe { env::set_var("WALRUS_DATA_DIR", &args[1]) };
    let wal = match Walrus::with_consistency_and_schedule(ReadConsistency::StrictlyAtOnce, mode) {
        Ok(wal) => Arc::new(wal),
        Err(err) => {
            eprintln!("walrus-rust-bench: cannot open the log in {}: {err}", args[1]);
            return ExitCode::from(1);
        }
    };
    let pools: Vec<Vec<Vec<u8>>> = (0..writers).map(|w| pool(seed, w as u64)).collect();
    let start = Arc::new(Barrier::new(writers + 1));
    let duration = Duration::from_secs_f64(seconds);
    let handles: Vec<_> = pools
        .into_iter()
        .enumerate()
        .map(|(w, items)| {
            let (wal, start) = (Arc::clone(&wal), Arc::clone(&start));
            let topic = format!("t{}", w % topics.max(1));
            thread::spawn(move || -> std::io::Result<(u64, u64, Vec<u64>)> {
                let (mut done, mut total, mut lat) = (0u64, 0u64, Vec::with_capacity(1 << 20));
                start.wait();
                let began = Instant::now();
                let mut i = 0;
                while began.elapsed() < duration {
                    let t0 = Instant::now();
                    wal.append_for_topic(&topic, &items[i])?;
                    lat.push(t0.elapsed().as_nanos() as u64);
                    total += items[i].len() as u64;
                    done += 1;
                    i = (i + 1) % items.len();
                }
                Ok((done, total, lat))
            })
        })
        .collect();
    start.wait();
    let began = Instant::now();
    let (mut writes, mut bytes, mut lat) = (0u64, 0u64, Vec::new());
    for handle in handles {
        match handle.join() {
            Ok(Ok((done, total, mut l))) => {
                writes += done;
                bytes += total;
                lat.append(&mut l);
            }
            Ok(Err(err)) => {
                eprintln!("walrus-rust-bench: append failed: {err}");
                return ExitCode::from(1);
            }
            Err(_) => {
                eprintln!("walrus-rust-bench: a writer thread panicked");
                return ExitCode::from(1);
            }
        }
    }
    let elapsed = began.elapsed().as_secs_f64();
    lat.sort_unstable();
    let p99 = lat
        .get((lat.len() * 99 / 100).min(lat.len().saturating_sub(1)))
        .map_or("null".to_string(), |ns| format!("{}", *ns as f64 / 1e3));
    println!(
        "{{\"writes\": {writes}, \"bytes\": {bytes}, \"seconds\": {elapsed}, \"p99_us\": {p99}}}"
    );
    ExitCode::SUCCESS
}
