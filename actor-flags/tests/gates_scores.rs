//! FWF's %-of-actors score for a table of (actor, flag) pairs. The expected first 16 bits were
//! computed outside this code base (Python's hashlib) and are checked against SHA-256 computed
//! here on its own.
#![allow(clippy::unwrap_used)]

use actor_flags::actor_score;
use sha2::{Digest, Sha256};

const TABLE: &[(&str, &str, u16)] = &[
    ("user:1", "new_checkout", 32130),
    ("user:42", "new_checkout", 51357),
    ("org:7", "dark_mode", 34624),
    ("", "x", 11633),
    ("user:1", "dark_mode", 56550),
    ("ünï", "flag_1", 39305),
];

#[test]
fn scores_match_fwf() {
    for (actor, flag, first16) in TABLE {
        let digest = Sha256::digest(format!("{actor}{flag}").as_bytes());
        let independent = u16::from_be_bytes([digest[0], digest[1]]);
        assert_eq!(independent, *first16, "{actor} {flag}");
        assert_eq!(
            actor_score(actor, flag),
            f64::from(*first16) / 65_536.0,
            "{actor} {flag}"
        );
    }
}
