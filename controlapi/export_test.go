package controlapi

// ToConnect exposes the error mapping to the black-box tests.
var ToConnect = toConnect
