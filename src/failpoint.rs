//! Named points where a crash test can make the server die or stall, to prove that what was
//! acknowledged survives, that what was not leaves no trace, and that a slow commit pushes
//! back on clients.
//!
//! Compiled in only with the `failpoints` feature; without it [`hit`] is empty and inlined
//! away. With it, `WEIR_FAILPOINTS` lists armed points, comma-separated, each `name` (abort on
//! the spot, as a power cut or `kill -9` would stop the process) or `name=sleep:MS` (stall the
//! calling thread for MS milliseconds every time the point is reached).

/// Aborts or stalls the calling thread if the failpoint `name` is armed.
#[inline(always)]
pub fn hit(name: &str) {
    #[cfg(feature = "failpoints")]
    if let Ok(armed) = std::env::var("WEIR_FAILPOINTS") {
        for entry in armed.split(',') {
            let (point, action) = entry.split_once('=').unwrap_or((entry, "abort"));
            if point.trim() != name {
                continue;
            }
            match action.trim().strip_prefix("sleep:") {
                Some(ms) => {
                    let ms = ms
                        .parse()
                        .expect("WEIR_FAILPOINTS: sleep:MS takes milliseconds");
                    std::thread::sleep(std::time::Duration::from_millis(ms));
                }
                None => {
                    eprintln!("failpoint {name}: aborting");
                    std::process::abort();
                }
            }
        }
    }
    #[cfg(not(feature = "failpoints"))]
    let _ = name;
}
