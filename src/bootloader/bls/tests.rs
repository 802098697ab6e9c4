//! BLS entry parsing.
