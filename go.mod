module block-forged-sender

go 1.26.0

require (
	github.com/d--j/go-milter v0.10.1
	github.com/jackc/pgx/v5 v5.13.0
	golang.org/x/net v0.62.0
	golang.org/x/text v0.44.0
)

require (
	github.com/emersion/go-message v0.18.2 // indirect
	github.com/jackc/pgpassfile v1.0.0 // indirect
	github.com/jackc/pgservicefile v0.0.0-20240606120523-5a60cdf6a761 // indirect
)
