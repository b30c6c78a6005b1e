//! Random container names in Docker's style (`eager_turing`), and the rule
//! for names users choose.

use crate::error::Result;

const ADJECTIVES: &[&str] = &[
    "admiring",
    "agile",
    "amazing",
    "awesome",
    "blissful",
    "bold",
    "brave",
    "busy",
    "calm",
    "clever",
    "compassionate",
    "confident",
    "cool",
    "dazzling",
    "determined",
    "eager",
    "ecstatic",
    "elastic",
    "elegant",
    "epic",
    "exciting",
    "fervent",
    "focused",
    "friendly",
    "gallant",
    "gifted",
    "goofy",
    "gracious",
    "happy",
    "hopeful",
    "inspiring",
    "jolly",
    "keen",
    "kind",
    "laughing",
    "loving",
    "lucid",
    "magical",
    "modest",
    "nervous",
    "nice",
    "nifty",
    "nostalgic",
    "optimistic",
    "peaceful",
    "pensive",
    "practical",
    "quirky",
    "relaxed",
    "serene",
    "sharp",
    "silly",
    "stoic",
    "sweet",
    "tender",
    "trusting",
    "upbeat",
    "vibrant",
    "vigilant",
    "wizardly",
    "youthful",
    "zealous",
    "zen",
];

const SURNAMES: &[&str] = &[
    "agnesi",
    "albattani",
    "allen",
    "archimedes",
    "babbage",
    "bardeen",
    "bartik",
    "bell",
    "bhabha",
    "borg",
    "bose",
    "brattain",
    "cannon",
    "carson",
    "cerf",
    "curie",
    "darwin",
    "dijkstra",
    "einstein",
    "elion",
    "euler",
    "faraday",
    "fermat",
    "feynman",
    "franklin",
    "galileo",
    "gauss",
    "goldberg",
    "hamilton",
    "hawking",
    "hodgkin",
    "hopper",
    "hypatia",
    "johnson",
    "kapitsa",
    "keller",
    "knuth",
    "lamarr",
    "lamport",
    "leakey",
    "lovelace",
    "lumiere",
    "mayer",
    "mccarthy",
    "meitner",
    "mendel",
    "morse",
    "napier",
    "newton",
    "noether",
    "pascal",
    "pike",
    "poincare",
    "ritchie",
    "shannon",
    "sinoussi",
    "thompson",
    "torvalds",
    "turing",
    "villani",
    "wiles",
    "wozniak",
    "yonath",
];

/// A random `adjective_surname`; `attempt` > 0 appends a digit, as Docker
/// does after a collision.
pub fn random(attempt: u32) -> String {
    let mut b = [0u8; 4];
    getrandom::fill(&mut b).expect("the OS random source is unavailable");
    let a = ADJECTIVES[(u16::from_le_bytes([b[0], b[1]]) as usize) % ADJECTIVES.len()];
    let s = SURNAMES[(u16::from_le_bytes([b[2], b[3]]) as usize) % SURNAMES.len()];
    if attempt == 0 {
        format!("{a}_{s}")
    } else {
        format!("{a}_{s}{}", b[0] % 10)
    }
}

/// Checks a user-chosen name (`/` prefix allowed) and returns it without the
/// slash. Docker's rule, `[a-zA-Z0-9][a-zA-Z0-9_.-]+`, and berth's length
/// cap ([`crate::util::names`]).
pub fn validate(name: &str) -> Result<String> {
    let n = name.strip_prefix('/').unwrap_or(name);
    crate::util::names::validate_name("container", n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(random(0).contains('_'));
        assert_eq!(validate("/web-1").unwrap(), "web-1");
        assert!(validate("a").is_err());
        assert!(validate("-x").is_err());
        assert!(validate("a b").is_err());
        let e = validate(&"a".repeat(10_000)).unwrap_err();
        assert!(e.message().contains("at most 255"), "{e}");
        assert_eq!(
            validate(&format!("/{}", "a".repeat(255))).unwrap().len(),
            255
        );
    }
}
