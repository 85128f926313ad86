-- The poker workload's schema, one for SQLite and Postgres.
CREATE TABLE IF NOT EXISTS poker_tournaments (
    id BIGINT PRIMARY KEY,
    name TEXT NOT NULL,
    players INTEGER NOT NULL,
    starting_stack BIGINT NOT NULL,
    status TEXT NOT NULL,
    seq BIGINT NOT NULL
);

CREATE TABLE IF NOT EXISTS poker_tables (
    tournament_id BIGINT NOT NULL REFERENCES poker_tournaments (id),
    table_no INTEGER NOT NULL,
    hand_no BIGINT NOT NULL,
    seq BIGINT NOT NULL,
    state TEXT NOT NULL,
    PRIMARY KEY (tournament_id, table_no)
);

CREATE TABLE IF NOT EXISTS poker_final_standings (
    tournament_id BIGINT NOT NULL REFERENCES poker_tournaments (id),
    position INTEGER NOT NULL,
    player_id INTEGER NOT NULL,
    stack BIGINT NOT NULL,
    table_no INTEGER NOT NULL,
    PRIMARY KEY (tournament_id, position)
);
