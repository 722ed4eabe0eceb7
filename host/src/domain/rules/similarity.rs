//! Prompt similarity exactly as the seed computes it, on top of a faithful port of Python's
//! `difflib.SequenceMatcher(None, a, b, autojunk=False).ratio()`.
//!
//! Strings are compared as sequences of Unicode scalar values, which is what Python's `str` indexes.

use std::collections::HashMap;

use super::lcs::LcsPattern;
use super::text::word_tokens;

/// Below this many characters on either side two different prompts are never "similar" (the seed's bound).
pub const MIN_SIMILARITY_CHARS: usize = 40;

/// `SequenceMatcher` over two char sequences with no junk and no popularity heuristic.
pub struct SequenceMatcher<'a> {
    a: &'a [char],
    b: &'a [char],
    /// For every char of `b`, the ascending indexes where it occurs (difflib's `b2j`).
    b2j: HashMap<char, Vec<usize>>,
}

impl<'a> SequenceMatcher<'a> {
    /// Prepares the matcher (indexes `b`).
    pub fn new(a: &'a [char], b: &'a [char]) -> SequenceMatcher<'a> {
        let mut b2j: HashMap<char, Vec<usize>> = HashMap::new();
        for (idx, ch) in b.iter().enumerate() {
            b2j.entry(*ch).or_default().push(idx);
        }
        SequenceMatcher { a, b, b2j }
    }

    /// Longest matching block in `a[alo..ahi]` and `b[blo..bhi]` as `(i, j, size)`; ties go to the block that
    /// ends first in `a`, then in `b`, exactly like difflib's `find_longest_match`.
    pub fn find_longest_match(
        &self,
        alo: usize,
        ahi: usize,
        blo: usize,
        bhi: usize,
    ) -> (usize, usize, usize) {
        let (mut best_i, mut best_j, mut best_size) = (alo, blo, 0usize);
        // difflib keeps `j2len` as a dict (missing = 0) rebuilt per `i`. Two dense vectors plus the list of
        // entries each one set give the same semantics without hashing: entries not set this round are reset.
        // Slot `j + 1 - blo` holds `j`; slot 0 stands for `blo - 1`, which difflib never sets (reads as 0).
        let width = bhi.saturating_sub(blo) + 1;
        let mut j2len = vec![0usize; width];
        let mut new_j2len = vec![0usize; width];
        let mut set_prev: Vec<usize> = Vec::new();
        let mut set_now: Vec<usize> = Vec::new();
        for i in alo..ahi {
            if let Some(positions) = self.b2j.get(&self.a[i]) {
                for &j in positions {
                    if j < blo {
                        continue;
                    }
                    if j >= bhi {
                        break;
                    }
                    let slot = j + 1 - blo;
                    let k = j2len[slot - 1] + 1;
                    new_j2len[slot] = k;
                    set_now.push(slot);
                    if k > best_size {
                        best_i = i + 1 - k;
                        best_j = j + 1 - k;
                        best_size = k;
                    }
                }
            }
            for &slot in &set_prev {
                j2len[slot] = 0;
            }
            std::mem::swap(&mut j2len, &mut new_j2len);
            std::mem::swap(&mut set_prev, &mut set_now);
            set_now.clear();
        }
        // difflib then extends the block over equal neighbours; with no junk these loops only matter at the
        // slice edges, but they are kept so the port stays line-for-line comparable.
        while best_i > alo && best_j > blo && self.a[best_i - 1] == self.b[best_j - 1] {
            best_i -= 1;
            best_j -= 1;
            best_size += 1;
        }
        while best_i + best_size < ahi
            && best_j + best_size < bhi
            && self.a[best_i + best_size] == self.b[best_j + best_size]
        {
            best_size += 1;
        }
        (best_i, best_j, best_size)
    }

    /// Total size of all matching blocks (difflib's `get_matching_blocks`, summed).
    pub fn matching_chars(&self) -> usize {
        let mut total = 0;
        let mut queue = vec![(0, self.a.len(), 0, self.b.len())];
        while let Some((alo, ahi, blo, bhi)) = queue.pop() {
            let (i, j, k) = self.find_longest_match(alo, ahi, blo, bhi);
            if k > 0 {
                total += k;
                if alo < i && blo < j {
                    queue.push((alo, i, blo, j));
                }
                if i + k < ahi && j + k < bhi {
                    queue.push((i + k, ahi, j + k, bhi));
                }
            }
        }
        total
    }

    /// `2 * M / T`, or 1.0 when both sequences are empty.
    pub fn ratio(&self) -> f64 {
        ratio_of(self.matching_chars(), self.a.len() + self.b.len())
    }

    /// Upper bound on [`ratio`](Self::ratio) from the multiset of chars (difflib's `quick_ratio`).
    pub fn quick_ratio(&self) -> f64 {
        let mut avail: HashMap<char, isize> = HashMap::new();
        for ch in self.b {
            *avail.entry(*ch).or_default() += 1;
        }
        let mut matches = 0;
        for ch in self.a {
            let slot = avail.entry(*ch).or_default();
            if *slot > 0 {
                matches += 1;
            }
            *slot -= 1;
        }
        ratio_of(matches, self.a.len() + self.b.len())
    }
}

fn ratio_of(matches: usize, total: usize) -> f64 {
    if total == 0 {
        1.0
    } else {
        2.0 * matches as f64 / total as f64
    }
}

/// Upper bound on the ratio from the lengths alone (difflib's `real_quick_ratio`).
fn real_quick_ratio(la: usize, lb: usize) -> f64 {
    ratio_of(la.min(lb), la + lb)
}

/// `SequenceMatcher(None, a, b, autojunk=False).ratio()`.
pub fn ratio(a: &str, b: &str) -> f64 {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    SequenceMatcher::new(&a, &b).ratio()
}

/// The `\w+` tokens of `text` (Python's `re` `\w`, see [`super::text`]), sorted and joined by single spaces.
pub fn sorted_tokens(text: &str) -> String {
    let mut tokens: Vec<&str> = word_tokens(text).collect();
    // Byte order of UTF-8 is code point order, which is how Python sorts `str`.
    tokens.sort_unstable();
    tokens.join(" ")
}

/// The seed's similarity: 1 if equal; 0 if either side is under [`MIN_SIMILARITY_CHARS`] chars; else the larger of
/// the raw ratio and the ratio of the sorted word tokens.
pub fn similarity(a: &str, b: &str) -> f64 {
    similarity_at_least(a, b, 0.0).unwrap_or(0.0)
}

/// Like [`similarity`], but returns `None` early when the result is provably below `threshold` (difflib's cheap
/// upper bounds and the longest common subsequence); the value returned when `Some` is exact.
pub fn similarity_at_least(a: &str, b: &str, threshold: f64) -> Option<f64> {
    SimilarityProbe::new(a).at_least(b, threshold)
}

/// One prompt prepared once for comparing with many (the duplicate guard compares a new prompt with up to a few
/// hundred live ones): its chars and sorted tokens, each indexed for the longest-common-subsequence bound.
#[derive(Debug, Clone)]
pub struct SimilarityProbe<'a> {
    text: &'a str,
    raw: Side,
    tokens: Side,
}

#[derive(Debug, Clone)]
struct Side {
    chars: Vec<char>,
    pattern: LcsPattern,
}

impl Side {
    fn new(text: &str) -> Side {
        let chars: Vec<char> = text.chars().collect();
        let pattern = LcsPattern::new(&chars);
        Side { chars, pattern }
    }

    /// The exact ratio of `self` (difflib's `a`) and `other` (`b`), or `None` when an upper bound already shows
    /// it is below `threshold`: lengths, then the char multiset, then the longest common subsequence.
    fn bounded_ratio(&self, other: &[char], threshold: f64) -> Option<f64> {
        let total = self.chars.len() + other.len();
        if real_quick_ratio(self.chars.len(), other.len()) < threshold {
            return None;
        }
        if ratio_of(self.pattern.lcs_len(other.iter().copied()), total) < threshold {
            return None;
        }
        let matcher = SequenceMatcher::new(&self.chars, other);
        if matcher.quick_ratio() < threshold {
            return None;
        }
        Some(matcher.ratio())
    }
}

impl<'a> SimilarityProbe<'a> {
    /// Prepares `text` (the `a` side of every comparison, as in the seed's `similarity(new, earlier)`).
    pub fn new(text: &'a str) -> SimilarityProbe<'a> {
        SimilarityProbe {
            text,
            raw: Side::new(text),
            tokens: Side::new(&sorted_tokens(text)),
        }
    }

    /// [`similarity_at_least`] of the probe and `other`.
    pub fn at_least(&self, other: &str, threshold: f64) -> Option<f64> {
        if self.text == other {
            return Some(1.0);
        }
        let other_chars: Vec<char> = other.chars().collect();
        if self.raw.chars.len() < MIN_SIMILARITY_CHARS || other_chars.len() < MIN_SIMILARITY_CHARS {
            return (threshold <= 0.0).then_some(0.0);
        }
        let raw = self.raw.bounded_ratio(&other_chars, threshold);
        let other_tokens: Vec<char> = sorted_tokens(other).chars().collect();
        let tokens = self.tokens.bounded_ratio(&other_tokens, threshold);
        let best = raw.unwrap_or(0.0).max(tokens.unwrap_or(0.0));
        (raw.is_some() || tokens.is_some())
            .then_some(best)
            .filter(|v| *v >= threshold)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Expected values computed once with CPython 3.11 `difflib.SequenceMatcher(None, a, b, autojunk=False)`:
    /// (a, b, ratio of the raw strings, ratio of the sorted `\w+` tokens).
    const DIFFLIB: &[(&str, &str, f64, f64)] = &[
        ("abcd", "bcde", 0.75, 0.75),
        ("", "", 1.0, 1.0),
        ("a", "", 0.0, 0.0),
        (
            "private Thread currentThread;",
            "private volatile Thread currentThread;",
            0.8656716417910447,
            0.8615384615384616,
        ),
        (
            "Please refactor the storage layer to use WAL mode and add tests",
            "Please refactor the storage layer to use WAL mode and add unit tests",
            0.9618320610687023,
            0.9618320610687023,
        ),
        (
            "fix the login bug in auth.rs and add a regression test please",
            "add a regression test please and fix the login bug in auth.rs",
            0.45901639344262296,
            1.0,
        ),
        (
            "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaab",
            "baaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            0.9795918367346939,
            0.9795918367346939,
        ),
        (
            "the quick brown fox jumps over the lazy dog",
            "the quick brown cat jumps over the lazy dog",
            0.9302325581395349,
            0.9069767441860465,
        ),
        (
            "Привет, мир! Сделай ревью кода в модуле store и поправь ошибки",
            "Привет, мир! Сделай ревью кода в модуле store и исправь ошибки",
            0.967741935483871,
            0.8666666666666667,
        ),
        (
            "abxcdabxcdabxcdabxcdabxcdabxcdabxcdabxcdabxcdabxcd",
            "abcdabcdabcdabcdabcdabcdabcdabcdabcdabcdabcdabcd",
            0.8163265306122449,
            0.8163265306122449,
        ),
        (
            "implement the feature described in the plan above carefully",
            "write a poem about the sea and the sky and the stars tonight",
            0.4369747899159664,
            0.2689075630252101,
        ),
        // Tie-breaking and recursion on both sides of the longest block.
        ("abab", "baba", 0.75, 0.75),
        (
            "xabcabcx",
            "abcxabc",
            0.5333333333333333,
            0.5333333333333333,
        ),
        (
            "the cat sat on the mat with the hat",
            "the hat sat on the cat with the mat",
            0.9142857142857143,
            1.0,
        ),
        (
            "aaabbbcccdddeeefffaaabbbcccdddeeefffaaabbbcccdddeeefff",
            "fffeeedddcccbbbaaafffeeedddcccbbbaaafffeeedddcccbbbaaa",
            0.2222222222222222,
            0.2222222222222222,
        ),
        (
            "Refactor: move store code to store/ and add WAL tests; keep the API stable!",
            "Refactor: move the store code into store/, add WAL tests, keep API stable.",
            0.87248322147651,
            0.9142857142857143,
        ),
    ];

    #[test]
    fn ratios_match_cpython_difflib() {
        for (a, b, raw, tokens) in DIFFLIB {
            assert!(
                (ratio(a, b) - raw).abs() < 1e-12,
                "raw ratio of {a:?} / {b:?}"
            );
            let (ta, tb) = (sorted_tokens(a), sorted_tokens(b));
            assert!(
                (ratio(&ta, &tb) - tokens).abs() < 1e-12,
                "token ratio of {a:?} / {b:?}"
            );
        }
    }

    #[test]
    fn similarity_follows_the_seed_rules() {
        // Equal strings are 1 whatever their length.
        assert_eq!(similarity("hi", "hi"), 1.0);
        // Under 40 chars on either side: 0.
        assert_eq!(similarity("abcd", "bcde"), 0.0);
        // Otherwise the larger of the two ratios: reordered words score 1 through the token pass.
        let s = similarity(
            "fix the login bug in auth.rs and add a regression test please",
            "add a regression test please and fix the login bug in auth.rs",
        );
        assert!((s - 1.0).abs() < 1e-12);
        let s = similarity(
            "Привет, мир! Сделай ревью кода в модуле store и поправь ошибки",
            "Привет, мир! Сделай ревью кода в модуле store и исправь ошибки",
        );
        assert!((s - 0.967741935483871).abs() < 1e-12);
    }

    #[test]
    fn bounded_similarity_is_exact_or_provably_low() {
        for (a, b, raw, tokens) in DIFFLIB {
            let exact = similarity(a, b);
            match similarity_at_least(a, b, 0.9) {
                Some(v) => assert!((v - exact).abs() < 1e-12 && v >= 0.9),
                None => assert!(exact < 0.9, "{a:?} {b:?} {raw} {tokens}"),
            }
        }
    }

    #[test]
    fn the_prepared_probe_agrees_with_the_exact_similarity_near_the_threshold() {
        // A base prompt and copies with a few chars changed, dropped or words swapped: many land on either side
        // of 0.90, where a wrong bound would show.
        let base =
            "Please refactor the storage layer to use WAL mode, add tests and document the change";
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = move |n: usize| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % n as u64) as usize
        };
        let probe = SimilarityProbe::new(base);
        let (mut above, mut below) = (0, 0);
        for _ in 0..400 {
            let mut chars: Vec<char> = base.chars().collect();
            for _ in 0..1 + next(24) {
                let at = next(chars.len());
                match next(3) {
                    0 => chars[at] = "xyzé ".chars().nth(next(5)).unwrap_or('x'),
                    1 => {
                        chars.remove(at);
                    }
                    _ => chars.insert(at, 'q'),
                }
            }
            let other: String = chars.into_iter().collect();
            let exact = similarity(base, &other);
            match probe.at_least(&other, 0.9) {
                Some(v) => {
                    assert!((v - exact).abs() < 1e-12 && v >= 0.9, "{other:?}");
                    above += 1;
                }
                None => {
                    assert!(exact < 0.9, "{other:?} scored {exact}");
                    below += 1;
                }
            }
        }
        assert!(above > 20 && below > 20, "{above} above, {below} below");
    }

    #[test]
    fn quick_ratio_bounds_the_ratio() {
        for (a, b, _, _) in DIFFLIB {
            let (ac, bc): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
            let m = SequenceMatcher::new(&ac, &bc);
            assert!(m.quick_ratio() + 1e-12 >= m.ratio());
            assert!(real_quick_ratio(ac.len(), bc.len()) + 1e-12 >= m.quick_ratio());
            let lcs = LcsPattern::new(&ac).lcs_len(bc.iter().copied());
            assert!(ratio_of(lcs, ac.len() + bc.len()) + 1e-12 >= m.ratio());
        }
    }
}
