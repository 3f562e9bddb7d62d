//! Enrichment from the request an event came in: the client's address into a `client_ip`
//! column, and the user agent's device class into an empty `device` column. Only columns the
//! source declares are filled, and never over a value the event carried.

/// What a request tells about its events.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Enrichment {
    /// The client's address (first `X-Forwarded-For` hop, else the peer).
    pub client_ip: Option<String>,
    /// The device class of the `User-Agent`.
    pub device: Option<&'static str>,
}

/// The column `client_ip` fills.
pub const CLIENT_IP_COLUMN: &str = "client_ip";
/// The column `device` fills.
pub const DEVICE_COLUMN: &str = "device";

/// `mobile`, `tablet`, `bot` or `desktop`, from a `User-Agent` header.
pub fn device_class(user_agent: &str) -> &'static str {
    let ua = user_agent.to_ascii_lowercase();
    if ["bot", "crawler", "spider", "curl/", "wget/"]
        .iter()
        .any(|s| ua.contains(s))
    {
        "bot"
    } else if ua.contains("ipad")
        || ua.contains("tablet")
        || (ua.contains("android") && !ua.contains("mobile"))
    {
        "tablet"
    } else if ["mobi", "iphone", "ipod", "android", "windows phone"]
        .iter()
        .any(|s| ua.contains(s))
    {
        "mobile"
    } else {
        "desktop"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_classes() {
        let iphone = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148";
        assert_eq!(device_class(iphone), "mobile");
        assert_eq!(
            device_class("Mozilla/5.0 (Linux; Android 14; Pixel 8) Mobile Safari/537.36"),
            "mobile"
        );
        assert_eq!(
            device_class("Mozilla/5.0 (iPad; CPU OS 17_0 like Mac OS X)"),
            "tablet"
        );
        assert_eq!(
            device_class("Mozilla/5.0 (Linux; Android 13; SM-X700) Safari/537.36"),
            "tablet"
        );
        assert_eq!(
            device_class("Mozilla/5.0 (X11; Linux x86_64) Firefox/120.0"),
            "desktop"
        );
        assert_eq!(
            device_class("Googlebot/2.1 (+http://www.google.com/bot.html)"),
            "bot"
        );
    }
}
