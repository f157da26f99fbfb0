// Command timer is the in-tree timer driver, timer:drivers:weft: weftd
// launches it (docs/drivers.md, "The timer driver"); run by hand, it says
// so and exits.
package main

import (
	"github.com/weftos/weft/plugins/driver"
	"github.com/weftos/weft/plugins/timer"
)

func main() { driver.Serve(timer.New(timer.Options{})) }
