//! Google's `tokenization_test.py` as literal Rust tests, plus the traps of
//! `tokenization.py` written down with their expected tokens and byte spans.

use bert::tokenizer::{
    is_control, is_punctuation, is_whitespace, BasicTokenizer, Tokenizer, Vocab, WordPiece,
};

const VOCAB: [&str; 11] = [
    "[UNK]", "[CLS]", "[SEP]", "want", "##want", "##ed", "wa", "un", "runn", "##ing", ",",
];

fn tokens(t: &Tokenizer, text: &str) -> Vec<String> {
    t.tokenize(text)
        .iter()
        .map(|t| t.text.to_string())
        .collect()
}

#[test]
fn test_full_tokenizer() {
    // Google writes the vocab file as "token\n" per token.
    let text: String = VOCAB.iter().map(|t| format!("{t}\n")).collect();
    let tok = Tokenizer::new(Vocab::from_text(&text).unwrap(), true).unwrap();
    let got = tok.tokenize("UNwant\u{00E9}d,running");
    let texts: Vec<&str> = got.iter().map(|t| t.text).collect();
    assert_eq!(texts, ["un", "##want", "##ed", ",", "runn", "##ing"]);
    let ids: Vec<u32> = got.iter().map(|t| t.id).collect();
    assert_eq!(ids, [7, 4, 5, 10, 8, 9]);
    // Spans index the original text: "é" is two bytes, and "##ed" covers it.
    let spans: Vec<(usize, usize)> = got.iter().map(|t| (t.start, t.end)).collect();
    assert_eq!(spans, [(0, 2), (2, 6), (6, 9), (9, 10), (10, 14), (14, 17)]);
}

#[test]
fn test_chinese() {
    let basic = BasicTokenizer {
        do_lower_case: true,
    };
    assert_eq!(
        basic.tokenize("ah\u{535A}\u{63A8}zz"),
        ["ah", "\u{535A}", "\u{63A8}", "zz"]
    );
}

#[test]
fn test_basic_tokenizer_lower() {
    let basic = BasicTokenizer {
        do_lower_case: true,
    };
    assert_eq!(
        basic.tokenize(" \tHeLLo!how  \n Are yoU?  "),
        ["hello", "!", "how", "are", "you", "?"]
    );
    assert_eq!(basic.tokenize("H\u{00E9}llo"), ["hello"]);
}

#[test]
fn test_basic_tokenizer_no_lower() {
    let basic = BasicTokenizer {
        do_lower_case: false,
    };
    assert_eq!(
        basic.tokenize(" \tHeLLo!how  \n Are yoU?  "),
        ["HeLLo", "!", "how", "Are", "yoU", "?"]
    );
}

#[test]
fn test_wordpiece_tokenizer() {
    let wp = WordPiece::new(Vocab::from_tokens(VOCAB[..10].iter().copied()).unwrap()).unwrap();
    assert!(wp.tokenize("").is_empty());
    assert_eq!(
        wp.tokenize("unwanted running"),
        ["un", "##want", "##ed", "runn", "##ing"]
    );
    assert_eq!(wp.tokenize("unwantedX running"), ["[UNK]", "runn", "##ing"]);
}

#[test]
fn test_convert_tokens_to_ids() {
    let vocab = Vocab::from_tokens(VOCAB[..10].iter().copied()).unwrap();
    let ids: Vec<Option<u32>> = ["un", "##want", "##ed", "runn", "##ing"]
        .iter()
        .map(|t| vocab.id(t))
        .collect();
    assert_eq!(ids, [Some(7), Some(4), Some(5), Some(8), Some(9)]);
}

#[test]
fn test_is_whitespace() {
    for c in [' ', '\t', '\r', '\n', '\u{00A0}'] {
        assert!(is_whitespace(c), "{c:?}");
    }
    assert!(!is_whitespace('A'));
    assert!(!is_whitespace('-'));
}

#[test]
fn test_is_control() {
    assert!(is_control('\u{0005}'));
    for c in ['A', ' ', '\t', '\r', '\u{1F4A9}'] {
        assert!(!is_control(c), "{c:?}");
    }
    // Only Cc/Cf: private use (Co) and unassigned characters are not control.
    assert!(is_control('\u{200B}') && !is_control('\u{E000}'));
}

#[test]
fn test_is_punctuation() {
    for c in ['-', '$', '`', '.'] {
        assert!(is_punctuation(c), "{c:?}");
    }
    assert!(!is_punctuation('A'));
    assert!(!is_punctuation(' '));
}

// ---- Traps of tokenization.py, each with literal tokens and spans.

fn small(tokens: &[&str], lower: bool) -> Tokenizer {
    Tokenizer::new(Vocab::from_tokens(tokens.iter().copied()).unwrap(), lower).unwrap()
}

#[test]
fn final_sigma_follows_python_str_lower() {
    let tok = small(&["[UNK]", "ο", "##δ", "##ος", "##οσ", "##α", "σ"], true);
    assert_eq!(tokens(&tok, "ΟΔΟΣ"), ["ο", "##δ", "##ος"]);
    assert_eq!(tokens(&tok, "ΟΔΟΣΑ"), ["ο", "##δ", "##οσ", "##α"]);
    // A lone Σ has no cased letter before it: σ.
    assert_eq!(tokens(&tok, "Σ"), ["σ"]);
    // Spans are of the original capitals (2 bytes each).
    let spans: Vec<(usize, usize)> = tok
        .tokenize("ΟΔΟΣ")
        .iter()
        .map(|t| (t.start, t.end))
        .collect();
    assert_eq!(spans, [(0, 2), (2, 4), (4, 8)]);
}

#[test]
fn lower_then_strip_accents_and_dotted_i() {
    let tok = small(&["[UNK]", "i", "cafe"], true);
    // İ lower-cases to "i" + U+0307, whose mark is then stripped.
    let got = tok.tokenize("\u{130} Café");
    assert_eq!(
        got.iter()
            .map(|t| (t.text, t.start, t.end, t.word))
            .collect::<Vec<_>>(),
        [("i", 0, 2, 0), ("cafe", 3, 8, 1)]
    );
    // Cased mode keeps accents: "Café" is not in the vocab.
    assert_eq!(tokens(&small(&["[UNK]", "cafe"], false), "Café"), ["[UNK]"]);
}

#[test]
fn word_limit_is_200_chars() {
    let tok = small(&["[UNK]", "x", "##x"], true);
    assert_eq!(tokens(&tok, &"x".repeat(200)).len(), 200);
    assert_eq!(tokens(&tok, &"x".repeat(201)), ["[UNK]"]);
    // Characters, not bytes: 200 two-byte letters still split.
    let tok = small(&["[UNK]", "é", "##é"], false);
    assert_eq!(tokens(&tok, &"é".repeat(200)).len(), 200);
    assert_eq!(tokens(&tok, &"é".repeat(201)), ["[UNK]"]);
}

#[test]
fn cjk_ranges_are_googles() {
    let tok = small(&["[UNK]", "abc", "def"], false);
    // U+2B8A0 (Extension E) is CJK for Google, so it splits the word.
    let got = tok.tokenize("abc\u{2B8A0}def");
    assert_eq!(
        got.iter()
            .map(|t| (t.text, t.start, t.end, t.word))
            .collect::<Vec<_>>(),
        [("abc", 0, 3, 0), ("[UNK]", 3, 7, 0), ("def", 7, 10, 0)]
    );
    // Hangul is not CJK here: it stays in its word.
    assert_eq!(tokens(&tok, "abc\u{D55C}def"), ["[UNK]"]);
}

#[test]
fn clean_text_drops_controls_and_keeps_private_use() {
    let tok = small(&["[UNK]", "ab", "cd"], false);
    let got = tok.tokenize("a\u{0}b\u{FFFD}\u{200B} c\u{7}d \u{E000}");
    assert_eq!(
        got.iter()
            .map(|t| (t.text, t.start, t.end, t.word))
            .collect::<Vec<_>>(),
        [("ab", 0, 3, 0), ("cd", 10, 13, 1), ("[UNK]", 14, 17, 2)]
    );
}

#[test]
fn unknown_word_is_one_unk_and_punctuation_splits() {
    let tok = small(&["[UNK]", "un", "##want", "!"], true);
    let got = tok.tokenize("unwantedX!");
    assert_eq!(
        got.iter()
            .map(|t| (t.text, t.start, t.end))
            .collect::<Vec<_>>(),
        [("[UNK]", 0, 9), ("!", 9, 10)]
    );
}

#[test]
fn line_separator_splits_words_like_str_split() {
    // U+2028 is neither _is_whitespace nor control, yet Python's str.split() splits on it.
    let tok = small(&["[UNK]", "a", "b"], false);
    let got = tok.tokenize("a\u{2028}b");
    assert_eq!(
        got.iter()
            .map(|t| (t.text, t.start, t.word))
            .collect::<Vec<_>>(),
        [("a", 0, 0), ("b", 4, 1)]
    );
}
