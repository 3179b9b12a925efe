//! The two XML documents S3 answers with that the claim-check reads: an error
//! (`<Error><Code>NoSuchKey</Code><Message>…</Message></Error>`) and a page of a
//! listing (`<ListBucketResult>` of ListObjectsV2).
//!
//! Both are shallow documents of text leaves, so one walk over `quick-xml`'s events
//! collects each leaf with the path of element names above it, and each document picks
//! the leaves it knows. Unknown elements are skipped, so a server that adds fields (AWS
//! adds `RequestId`, `HostId`; SeaweedFS `Resource`) parses the same. A body that is not
//! XML at all (a proxy's HTML error page) is not an error here: it yields no code, and the
//! caller falls back on the HTTP status.

use quick_xml::events::Event;
use quick_xml::Reader;

/// Elements nested deeper than this are not S3's answer: the walk stops there.
const MAX_DEPTH: usize = 8;

/// An S3 error body's `Code` and `Message`; empty when the body had none.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct ErrorBody {
    pub code: String,
    pub message: String,
}

/// One page of ListObjectsV2: the keys in it, in S3's order, and the token of the next
/// page when there is one.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct ListPage {
    pub keys: Vec<String>,
    pub next: Option<String>,
}

/// Why a body could not be read as S3 XML.
#[derive(Debug, thiserror::Error)]
#[error("S3 answered with XML that does not parse: {0}")]
pub(crate) struct XmlError(String);

pub(crate) fn error_body(body: &[u8]) -> ErrorBody {
    let mut out = ErrorBody::default();
    // A body that does not parse leaves what was read before the fault, often nothing.
    let _ = leaves(body, |path, text| match path {
        [root, leaf] if root == "Error" && leaf == "Code" => out.code = text,
        [root, leaf] if root == "Error" && leaf == "Message" => out.message = text,
        _ => {}
    });
    out
}

pub(crate) fn list_page(body: &[u8]) -> Result<ListPage, XmlError> {
    let mut page = ListPage::default();
    let mut truncated = false;
    leaves(body, |path, text| {
        let [root, rest @ ..] = path else { return };
        if root != "ListBucketResult" {
            return;
        }
        match rest {
            [contents, key] if contents == "Contents" && key == "Key" => page.keys.push(text),
            [leaf] if leaf == "IsTruncated" => truncated = text.trim() == "true",
            [leaf] if leaf == "NextContinuationToken" => page.next = Some(text),
            _ => {}
        }
    })?;
    if !truncated {
        page.next = None;
    } else if page.next.as_deref().is_none_or(str::is_empty) {
        // A truncated page without a token would have us ask for page one again, forever.
        return Err(XmlError(
            "IsTruncated is true but NextContinuationToken is missing".into(),
        ));
    }
    Ok(page)
}

/// Calls `leaf(path, text)` for every element holding text, with the local names of the
/// elements from the root down to it, entities and character references resolved.
fn leaves(body: &[u8], mut leaf: impl FnMut(&[String], String)) -> Result<(), XmlError> {
    let mut reader = Reader::from_reader(body);
    let mut path: Vec<String> = Vec::new();
    let mut text = String::new();
    loop {
        match reader.read_event().map_err(|e| XmlError(e.to_string()))? {
            Event::Start(start) => {
                if path.len() == MAX_DEPTH {
                    return Err(XmlError(format!("elements nested deeper than {MAX_DEPTH}")));
                }
                path.push(String::from_utf8_lossy(start.local_name().as_ref()).into_owned());
                text.clear();
            }
            Event::Text(t) => text.push_str(&t.xml10_content().map_err(|e| XmlError(e.to_string()))?),
            Event::CData(t) => text.push_str(&t.decode().map_err(|e| XmlError(e.to_string()))?),
            Event::GeneralRef(r) => {
                if let Some(c) = r.resolve_char_ref().map_err(|e| XmlError(e.to_string()))? {
                    text.push(c);
                } else {
                    let name = r.decode().map_err(|e| XmlError(e.to_string()))?;
                    let resolved = quick_xml::escape::resolve_predefined_entity(&name)
                        .ok_or_else(|| XmlError(format!("unknown entity &{name};")))?;
                    text.push_str(resolved);
                }
            }
            Event::End(_) => {
                if !text.is_empty() {
                    leaf(&path, std::mem::take(&mut text));
                }
                path.pop();
            }
            Event::Eof => return Ok(()),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_body_gives_its_code_and_message() {
        let aws = br#"<?xml version="1.0" encoding="UTF-8"?>
<Error><Code>NoSuchKey</Code><Message>The specified key does not exist.</Message>
<Key>raw/a &amp; b.swy</Key><RequestId>4442587FB7D0A2F9</RequestId></Error>"#;
        assert_eq!(
            error_body(aws),
            ErrorBody {
                code: "NoSuchKey".into(),
                message: "The specified key does not exist.".into()
            }
        );
        let escaped = b"<Error><Code>SlowDown</Code><Message>Please reduce &lt;your&gt; rate &#33;</Message></Error>";
        assert_eq!(error_body(escaped).message, "Please reduce <your> rate !");
    }

    #[test]
    fn a_body_that_is_not_an_s3_error_gives_no_code() {
        assert_eq!(error_body(b""), ErrorBody::default());
        assert_eq!(
            error_body(b"<html><body>502 Bad Gateway</body></html>"),
            ErrorBody::default()
        );
        assert_eq!(error_body(b"not xml <<<"), ErrorBody::default());
        // A Code outside an Error element is not taken for one.
        assert_eq!(error_body(b"<Other><Code>NoSuchKey</Code></Other>").code, "");
    }

    #[test]
    fn a_list_page_gives_its_keys_in_order_and_the_next_token() {
        let body = br#"<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
  <Name>swy</Name><Prefix>raw/</Prefix><KeyCount>2</KeyCount><MaxKeys>2</MaxKeys>
  <IsTruncated>true</IsTruncated>
  <Contents><Key>raw/a.swy</Key><Size>3</Size><ETag>&quot;x&quot;</ETag></Contents>
  <Contents><Key>raw/b&amp;c.swy</Key><Size>4</Size></Contents>
  <NextContinuationToken>tok/en==</NextContinuationToken>
</ListBucketResult>"#;
        let page = list_page(body).unwrap();
        assert_eq!(page.keys, vec!["raw/a.swy", "raw/b&c.swy"]);
        assert_eq!(page.next.as_deref(), Some("tok/en=="));

        let last = b"<ListBucketResult><IsTruncated>false</IsTruncated><Contents><Key>k</Key></Contents>\
                     <NextContinuationToken>stale</NextContinuationToken></ListBucketResult>";
        assert_eq!(list_page(last).unwrap().next, None);
        assert_eq!(
            list_page(b"<ListBucketResult></ListBucketResult>").unwrap(),
            ListPage::default()
        );
    }

    #[test]
    fn a_truncated_page_without_a_token_or_a_broken_page_is_an_error() {
        assert!(list_page(b"<ListBucketResult><IsTruncated>true</IsTruncated></ListBucketResult>").is_err());
        assert!(list_page(b"<ListBucketResult><Contents><Key>k</Key></Contents></Wrong>").is_err());
        let deep = "<a>".repeat(MAX_DEPTH + 1);
        assert!(list_page(deep.as_bytes()).is_err());
    }
}
