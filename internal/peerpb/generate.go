package peerpb

// Generated with protoc 3.21.12 (Debian protobuf-compiler), protoc-gen-go
// v1.36.12 and protoc-gen-go-grpc v1.6.2:
//
//	apt-get install -y protobuf-compiler
//	go install google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12
//	go install google.golang.org/grpc/cmd/protoc-gen-go-grpc@v1.6.2
//	go generate ./internal/peerpb/
//
// The generated files are checked in; the build needs none of these tools.

//go:generate protoc --proto_path=. --go_out=. --go_opt=paths=source_relative --go-grpc_out=. --go-grpc_opt=paths=source_relative peer.proto
