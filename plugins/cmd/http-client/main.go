// Command http-client is the in-tree http-client driver,
// http-client:drivers:weft: weftd launches it (docs/drivers.md, "The
// http-client driver"); run by hand, it says so and exits.
package main

import (
	"github.com/weftos/weft/plugins/driver"
	"github.com/weftos/weft/plugins/httpclient"
)

func main() { driver.Serve(httpclient.New()) }
