"""The browser pages: host studio, viewer's live page, marketer dashboard."""
