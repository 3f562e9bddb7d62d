//! A body cut into the byte slices of its events without parsing them: NDJSON's non-blank
//! lines, a JSON array's elements, or a lone object. The fast path decodes each slice on its
//! own so it can check that each holds exactly one event, as the per-event path requires.

use super::Framing;

/// The events of `body`, or `None` when the framing is not plain enough to cut without a
/// parser (the per-event path then reads the body and names what is wrong with it).
pub fn event_slices(body: &[u8], framing: Framing) -> Option<Vec<&[u8]>> {
    match framing {
        Framing::NdJson => Some(
            body.split(|b| *b == b'\n')
                .filter(|line| !is_blank(line))
                .collect(),
        ),
        Framing::Json => {
            let body = body.trim_ascii();
            match body.first()? {
                b'{' => Some(vec![body]),
                b'[' => array_elements(body),
                _ => None,
            }
        }
    }
}

fn is_blank(bytes: &[u8]) -> bool {
    bytes.iter().all(u8::is_ascii_whitespace)
}

/// The elements of a JSON array (`body` starts with `[`), found by tracking nesting and
/// strings; `None` if the brackets do not balance or an element is empty.
fn array_elements(body: &[u8]) -> Option<Vec<&[u8]>> {
    if body.last() != Some(&b']') || body.len() < 2 {
        return None;
    }
    let inner = &body[1..body.len() - 1];
    if is_blank(inner) {
        return Some(Vec::new());
    }
    let mut elements = Vec::new();
    let (mut depth, mut in_string, mut escaped, mut start) = (0usize, false, false, 0);
    for (i, &b) in inner.iter().enumerate() {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'{' | b'[' => depth += 1,
            b'}' | b']' => depth = depth.checked_sub(1)?,
            b',' if depth == 0 => {
                elements.push(&inner[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if depth != 0 || in_string {
        return None;
    }
    elements.push(&inner[start..]);
    (!elements.iter().any(|e| is_blank(e))).then_some(elements)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cut(body: &str, framing: Framing) -> Option<Vec<&str>> {
        event_slices(body.as_bytes(), framing).map(|slices| {
            slices
                .into_iter()
                .map(|s| std::str::from_utf8(s).unwrap().trim())
                .collect()
        })
    }

    #[test]
    fn cuts_lines_arrays_and_objects() {
        assert_eq!(
            cut("{\"a\":1}\n\n  \n{\"b\":2}\n", Framing::NdJson),
            Some(vec!["{\"a\":1}", "{\"b\":2}"])
        );
        assert_eq!(
            cut(r#" [ {"a":"x,]}\"{"}, {"b":[1,{"c":2}]} ] "#, Framing::Json),
            Some(vec![r#"{"a":"x,]}\"{"}"#, r#"{"b":[1,{"c":2}]}"#])
        );
        assert_eq!(cut(" {\"a\":1} ", Framing::Json), Some(vec!["{\"a\":1}"]));
        assert_eq!(cut("[]", Framing::Json), Some(vec![]));
        for odd in ["[{}, ]", "[{]", "[{}", "\"x\"", "", "[\"]"] {
            assert_eq!(cut(odd, Framing::Json), None, "{odd}");
        }
    }
}
