"""English date formats with the zone named after every time ("Dec. 7, 2026, 4:41 a.m. EST"): the admin renders a
time in the viewer's zone (portal.zones.ViewerZoneMiddleware), and a time without its zone reads as the reader's own.
`T` is the zone's abbreviation, or its offset ("-03") where the zone has none. Dates alone keep Django's format."""

DATETIME_FORMAT = "N j, Y, P T"
SHORT_DATETIME_FORMAT = "m/d/Y P T"
