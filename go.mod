module block-forged-sender

go 1.26.0

require (
	github.com/d--j/go-milter v0.10.1
	golang.org/x/net v0.62.0
	golang.org/x/text v0.44.0
)

require github.com/emersion/go-message v0.18.2 // indirect
