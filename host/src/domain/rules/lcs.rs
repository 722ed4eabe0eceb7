//! Length of the longest common subsequence of two char sequences, bit-parallel (Allison–Dix, Hyyrö):
//! `O(n · ⌈m/64⌉)` word operations for a pattern of `m` chars against a text of `n`.
//!
//! The similarity pass uses it as an exact upper bound: difflib's matching blocks appear in the same order in
//! both sequences and never overlap, so together they form a common subsequence and `matched ≤ lcs`. Unlike the
//! char-multiset bound (`quick_ratio`), it separates prompts that merely use the same alphabet, which in one
//! language is nearly all of them.

use std::collections::HashMap;

/// One side of the comparison, indexed once and compared with many texts.
#[derive(Debug, Clone)]
pub struct LcsPattern {
    len: usize,
    words: usize,
    /// Row `r` (`words` u64s from `r * words`): bit `j` is set where the pattern's `j`-th char is that row's
    /// char. Row 0 is all zeros, for chars the pattern lacks.
    rows: Vec<u64>,
    /// Row of each ASCII char (0 = absent); ASCII is nearly every char of a prompt, so no hashing for it.
    ascii: [u32; 128],
    /// Row of every other char.
    other: HashMap<char, u32>,
}

impl LcsPattern {
    /// Indexes `pattern`.
    pub fn new(pattern: &[char]) -> LcsPattern {
        let words = pattern.len().div_ceil(64);
        let mut index = LcsPattern {
            len: pattern.len(),
            words,
            rows: vec![0; words],
            ascii: [0; 128],
            other: HashMap::new(),
        };
        for (j, ch) in pattern.iter().enumerate() {
            let row = index.row_or_insert(*ch);
            index.rows[row * words + j / 64] |= 1u64 << (j % 64);
        }
        index
    }

    /// How many chars the pattern has.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the pattern is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn row_of(&self, ch: char) -> usize {
        match u32::from(ch) {
            code @ 0..=127 => self.ascii[code as usize] as usize,
            _ => self.other.get(&ch).copied().unwrap_or(0) as usize,
        }
    }

    fn row_or_insert(&mut self, ch: char) -> usize {
        let existing = self.row_of(ch);
        if existing != 0 {
            return existing;
        }
        let row = self.rows.len() / self.words.max(1);
        self.rows.resize(self.rows.len() + self.words, 0);
        // A pattern has at most as many distinct chars as it has chars, far below u32::MAX rows.
        let id = row as u32;
        match u32::from(ch) {
            code @ 0..=127 => self.ascii[code as usize] = id,
            _ => {
                self.other.insert(ch, id);
            }
        }
        row
    }

    /// The length of the longest common subsequence of the pattern and `text`.
    pub fn lcs_len(&self, text: impl IntoIterator<Item = char>) -> usize {
        if self.words == 0 {
            return 0;
        }
        // `v` has a zero bit for every pattern position that ends a longest common subsequence so far.
        let mut v = vec![u64::MAX; self.words];
        for ch in text {
            let row = self.row_of(ch);
            if row == 0 {
                continue;
            }
            let matches = &self.rows[row * self.words..(row + 1) * self.words];
            let mut carry = false;
            for (word, &mask) in v.iter_mut().zip(matches) {
                let u = *word & mask;
                let (sum, c1) = word.overflowing_add(u);
                let (sum, c2) = sum.overflowing_add(u64::from(carry));
                carry = c1 || c2;
                *word = sum | (*word & !mask);
            }
        }
        // Bits past the pattern's end start as ones and stay ones (no pattern char sets them, so `v & !mask`
        // keeps them): every zero is a pattern position.
        v.iter().map(|word| word.count_zeros() as usize).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Textbook dynamic programming, the reference.
    fn lcs_reference(a: &[char], b: &[char]) -> usize {
        let mut prev = vec![0usize; b.len() + 1];
        for x in a {
            let mut row = vec![0usize; b.len() + 1];
            for (j, y) in b.iter().enumerate() {
                row[j + 1] = if x == y {
                    prev[j] + 1
                } else {
                    row[j].max(prev[j + 1])
                };
            }
            prev = row;
        }
        prev[b.len()]
    }

    fn check(a: &str, b: &str) {
        let (ac, bc): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
        let expected = lcs_reference(&ac, &bc);
        assert_eq!(
            LcsPattern::new(&ac).lcs_len(bc.iter().copied()),
            expected,
            "{a:?} / {b:?}"
        );
        assert_eq!(
            LcsPattern::new(&bc).lcs_len(ac.iter().copied()),
            expected,
            "{b:?} / {a:?}"
        );
    }

    #[test]
    fn matches_the_reference_on_small_cases() {
        check("", "");
        check("a", "");
        check("abcd", "bcde");
        check("abab", "baba");
        check("xabcabcx", "abcxabc");
        check("Привет, мир", "при вет мир!");
        check("aaaa", "aa");
    }

    #[test]
    fn matches_the_reference_across_word_boundaries() {
        // Deterministic pseudo-random strings of 1..300 chars over small alphabets, so matches are dense and
        // carries cross the 64-bit words.
        let mut state = 0x2545_F491_4F6C_DD1Du64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for round in 0..300 {
            let alphabet: Vec<char> = "abcdé ".chars().take(2 + round % 5).collect();
            let mut text = |len: usize| -> String {
                (0..len)
                    .map(|_| alphabet[(next() % alphabet.len() as u64) as usize])
                    .collect()
            };
            let (la, lb) = (1 + round % 300, 1 + (round * 7) % 200);
            let (a, b) = (text(la), text(lb));
            check(&a, &b);
        }
    }
}
