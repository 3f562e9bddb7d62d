//! Named points where a crash test can make the server die, to prove that what was
//! acknowledged survives and what was not leaves no trace.
//!
//! Compiled in only with the `failpoints` feature; without it [`hit`] is empty and inlined
//! away. With it, a point fires when its name is listed in `WEIR_FAILPOINTS` (comma-separated)
//! and the process aborts on the spot, as a power cut or `kill -9` would stop it.

/// Aborts the process if the failpoint `name` is armed.
#[inline(always)]
pub fn hit(name: &str) {
    #[cfg(feature = "failpoints")]
    if std::env::var("WEIR_FAILPOINTS")
        .is_ok_and(|armed| armed.split(',').any(|n| n.trim() == name))
    {
        eprintln!("failpoint {name}: aborting");
        std::process::abort();
    }
    #[cfg(not(feature = "failpoints"))]
    let _ = name;
}
